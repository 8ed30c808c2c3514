"""Training precision (lsmrl.engine.precision): resolved like inference, by the environment switch, the CPU's flags
and a measured bf16 speed-up; every branch runs on every CPU kind (flags and speed-up passed in)."""

from __future__ import annotations

import pytest
import torch

from lsmrl.engine import precision

NATIVE, PLAIN = {"avx512f", "avx512_bf16"}, {"avx512f", "avx2"}


@pytest.fixture
def no_setting(monkeypatch):
    monkeypatch.delenv(precision.FORCE_FP32_ENV, raising=False)
    monkeypatch.delenv(precision.PRECISION_ENV, raising=False)
    return monkeypatch


def test_auto_trains_in_bf16_only_where_it_is_native_and_measures_faster(no_setting):
    chosen = precision.training_precision("cpu", flags=NATIVE, speedup=2.7)
    assert chosen.name == "bf16" and not chosen.needs_grad_scaler
    assert precision.training_precision("cpu", flags=NATIVE, speedup=0.6).name == "fp32"  # avx512_bf16, slower
    assert precision.training_precision("cpu", flags=PLAIN, speedup=2.7).name == "fp32"  # emulated
    assert precision.training_precision("cpu", enabled=False, flags=NATIVE, speedup=2.7).name == "fp32"


def test_named_precisions_win_and_the_switch_sets_auto(no_setting):
    assert precision.training_precision("cpu", requested="bf16", flags=PLAIN).name == "bf16"
    assert precision.training_precision("cpu", requested="fp32", flags=NATIVE, speedup=2.7).name == "fp32"
    no_setting.setenv(precision.PRECISION_ENV, "fp32")
    assert precision.training_precision("cpu", flags=NATIVE, speedup=2.7).name == "fp32"
    assert precision.training_precision("cpu", requested="bf16").name == "bf16"
    no_setting.setenv(precision.PRECISION_ENV, "bf16")
    assert precision.training_precision("cpu", flags=PLAIN, speedup=0.5).name == "bf16"
    assert precision.training_precision("cpu", enabled=False).name == "fp32"
    no_setting.delenv(precision.PRECISION_ENV)
    no_setting.setenv(precision.FORCE_FP32_ENV, "1")
    assert precision.training_precision("cpu", flags=NATIVE, speedup=2.7).name == "fp32"
    with pytest.raises(ValueError, match="unknown precision"):
        precision.training_precision("cpu", requested="fp16")


def test_the_record_says_what_was_chosen_and_why(no_setting):
    no_setting.setenv(precision.PRECISION_ENV, "bf16")
    record = precision.precision_record(precision.training_precision("cpu"))
    assert record["precision"] == "bf16" and record["setting"] == "bf16" and record["device"] == "cpu"
    assert isinstance(record["cpu_native_bf16"], bool)
    assert record["bf16_matmul_speedup"] is None or record["bf16_matmul_speedup"] > 0


def test_autocast_context_computes_in_the_chosen_dtype():
    layer = torch.nn.Linear(8, 8)
    x = torch.randn(2, 8)
    with precision.Precision("cpu", torch.bfloat16).autocast():
        assert layer(x).dtype == torch.bfloat16
    with precision.Precision("cpu", None).autocast():
        assert layer(x).dtype == torch.float32
