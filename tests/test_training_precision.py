"""Training precision (lsmrl.engine.precision): bf16 autocast on CPUs with native bf16, fp32 when forced."""

from __future__ import annotations

import torch

from lsmrl.engine import precision


def test_native_bf16_cpu_trains_in_bf16_unless_fp32_is_forced(monkeypatch):
    monkeypatch.delenv(precision.FORCE_FP32_ENV, raising=False)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    chosen = precision.training_precision("cpu")
    assert chosen.name == "bf16" and not chosen.needs_grad_scaler
    assert precision.training_precision("cpu", enabled=False).name == "fp32"
    monkeypatch.setenv(precision.FORCE_FP32_ENV, "1")
    assert precision.training_precision("cpu").name == "fp32"


def test_cpu_without_native_bf16_trains_in_fp32(monkeypatch):
    monkeypatch.delenv(precision.FORCE_FP32_ENV, raising=False)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert precision.training_precision("cpu").name == "fp32"


def test_autocast_context_computes_in_the_chosen_dtype():
    layer = torch.nn.Linear(8, 8)
    x = torch.randn(2, 8)
    with precision.Precision("cpu", torch.bfloat16).autocast():
        assert layer(x).dtype == torch.bfloat16
    with precision.Precision("cpu", None).autocast():
        assert layer(x).dtype == torch.float32
