"""Inference precision: how ``auto`` decides, the fp32 islands under bf16 autocast, and bf16 against fp32 on the
committed checkpoint (embeddings, mAP, occlusion and Grad-CAM maps)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from lsmrl import device as dev
from tests.helpers import tiny_model

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "checkpoints" / "lsmrl-mini-synthvvi.safetensors"
DATA = ROOT / "assets" / "synthvvi"


# ----------------------------------------------------------------------------- choosing the precision
def test_auto_needs_native_bf16_and_a_measured_speedup(monkeypatch):
    monkeypatch.delenv(dev.FORCE_FP32_ENV, raising=False)
    monkeypatch.delenv(dev.PRECISION_ENV, raising=False)  # both branches of `auto` on every CPU kind
    native, plain = {"avx512f", "avx512_bf16"}, {"avx512f", "avx2"}
    assert dev.inference_precision("auto", "cpu", flags=native, speedup=2.5) == "bf16"
    assert dev.inference_precision("auto", "cpu", flags={"amx_bf16", "amx_tile"}, speedup=8.0) == "bf16"
    assert dev.inference_precision("auto", "cpu", flags=native, speedup=0.6) == "fp32"  # flags, but slower
    assert dev.inference_precision("auto", "cpu", flags=plain, speedup=2.5) == "fp32"  # emulated bf16
    assert dev.inference_precision("bf16", "cpu", flags=plain) == "bf16"  # asked for: correct, if slower
    assert dev.inference_precision("fp32", "cpu", flags=native, speedup=2.5) == "fp32"
    with pytest.raises(ValueError, match="unknown precision"):
        dev.inference_precision("fp16")


def test_the_environment_switch_sets_what_auto_means_and_names_win(monkeypatch):
    native = {"avx512f", "avx512_bf16"}
    monkeypatch.delenv(dev.FORCE_FP32_ENV, raising=False)
    for setting, expected in (("fp32", "fp32"), ("bf16", "bf16"), ("BF16 ", "bf16")):
        monkeypatch.setenv(dev.PRECISION_ENV, setting)
        assert dev.precision_setting() == expected
        assert dev.inference_precision("auto", "cpu", flags=native, speedup=2.5) == expected
        assert dev.inference_precision("auto", "cpu", flags={"avx2"}, speedup=0.5) == expected
        assert dev.inference_precision("fp32", "cpu") == "fp32" and dev.inference_precision("bf16", "cpu") == "bf16"
    monkeypatch.setenv(dev.PRECISION_ENV, "auto")
    assert dev.inference_precision("auto", "cpu", flags=native, speedup=2.5) == "bf16"
    monkeypatch.setenv(dev.PRECISION_ENV, "fp16")
    with pytest.raises(ValueError, match="LSMRL_PRECISION='fp16' is not a precision; set it to one of auto, bf16, fp32"):
        dev.inference_precision("auto", "cpu")
    # the old switch is a synonym of fp32; LSMRL_PRECISION wins when both are set
    monkeypatch.delenv(dev.PRECISION_ENV)
    monkeypatch.setenv(dev.FORCE_FP32_ENV, "1")
    assert dev.precision_setting() == "fp32"
    assert dev.inference_precision("auto", "cpu", flags=native, speedup=2.5) == "fp32"
    assert dev.inference_precision("bf16", "cpu") == "bf16"
    monkeypatch.setenv(dev.PRECISION_ENV, "bf16")
    assert dev.precision_setting() == "bf16"
    monkeypatch.delenv(dev.PRECISION_ENV)
    monkeypatch.setenv(dev.FORCE_FP32_ENV, "0")
    assert dev.precision_setting() == "auto"


def test_the_suite_runs_in_the_precision_it_was_asked_for():
    """tests/conftest.py: fp32 unless the runner set LSMRL_PRECISION (or LSMRL_FP32) itself."""
    import os

    assert dev.precision_setting() in ("fp32", "bf16", "auto")
    if not os.environ.get(dev.FORCE_FP32_ENV, "").strip():
        assert os.environ.get(dev.PRECISION_ENV)


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 avx512_vnni\n\nprocessor\t: 1\n")
    flags = dev.cpu_flags(info)
    assert {"avx512f", "avx512_bf16"} <= flags and dev.cpu_has_native_bf16(flags)
    assert not dev.cpu_has_native_bf16({"avx512f", "avx2"})
    assert dev.cpu_flags(tmp_path / "missing") == set()


def test_bf16_speedup_is_measured_once_per_process():
    first = dev.bf16_matmul_speedup(size=256, rounds=1)
    assert first > 0 and dev.bf16_matmul_speedup(size=256, rounds=1) == first


# ----------------------------------------------------------------------------- autocast regions
def test_fp32_context_switches_an_outer_autocast_off():
    a, b = torch.randn(8, 8), torch.randn(8, 8)
    with dev.autocast_context("cpu", "bf16"):
        assert (a @ b).dtype == torch.bfloat16
        with dev.autocast_context("cpu", "fp32"):
            assert (a @ b).dtype == torch.float32
        assert (a @ b).dtype == torch.bfloat16


class _Failing(nn.Module):
    def forward(self, x):
        raise RuntimeError("boom")


def test_fp32_islands_run_in_fp32_inside_bf16_and_restore_autocast_after_errors():
    torch.manual_seed(0)
    tower, head = nn.Linear(16, 16), nn.Linear(16, 4)
    failing = _Failing()
    dev.keep_fp32_under_autocast(head)
    dev.keep_fp32_under_autocast(head)  # idempotent: one pair of hooks
    dev.keep_fp32_under_autocast(failing)
    assert len(head._forward_pre_hooks) == 1
    x = torch.randn(3, 16)
    with dev.autocast_context("cpu", "bf16"):
        hidden = tower(x)
        out = head(hidden)
        assert hidden.dtype == torch.bfloat16 and out.dtype == torch.float32
        assert torch.is_autocast_enabled("cpu")  # back on after the island
        with pytest.raises(RuntimeError, match="boom"):
            failing(hidden)
        assert torch.is_autocast_enabled("cpu")  # and after an island that raised
        assert tower(x).dtype == torch.bfloat16
    assert head(x).dtype == torch.float32  # outside autocast the hooks do nothing
    torch.testing.assert_close(head(hidden.float()), out, rtol=0, atol=0)


def test_a_tiny_model_runs_in_bf16_with_an_fp32_head():
    from lsmrl.engine.extract import inference_autocast

    model = tiny_model().eval()
    frames = torch.randn(2, 4, 3, 128, 64, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        reference = model(frames, ["visible", "infrared"])
        with inference_autocast(model, "cpu", "bf16"):
            out = model(frames, ["visible", "infrared"])
    assert out["stfl"].dtype == torch.bfloat16  # the tower ran in bf16
    assert out["embedding"].dtype == torch.float32  # the head in fp32
    cosine = torch.nn.functional.cosine_similarity(out["embedding"], reference["embedding"], dim=-1)
    assert bool((cosine > 0.99).all()), cosine


# ----------------------------------------------------------------------------- the committed checkpoint
@pytest.fixture(scope="module")
def demo():
    if not (CHECKPOINT.is_file() and (DATA / "info").is_dir()):
        pytest.skip("the demo checkpoint or the embedded SynthVVI split is not present")
    from lsmrl.data.registry import build_dataset
    from lsmrl.model.checkpoint import load_model

    model, _ = load_model(CHECKPOINT)
    return model.eval(), build_dataset("synthvvi", DATA)


@pytest.mark.slow
def test_bf16_matches_fp32_on_the_committed_checkpoint(demo):
    """bf16 autocast (tower in bf16, head in fp32) against fp32 on the whole embedded test split: every final
    embedding has cosine >= 0.999 with its fp32 twin and mAP moves by at most 0.3 in both directions."""
    from lsmrl.engine.extract import evaluate_model

    model, dataset = demo
    runs = {precision: evaluate_model(model, dataset, progress=False, precision=precision)
            for precision in ("fp32", "bf16")}
    for stage in ("stfl", "embedding"):
        a, b = runs["fp32"][1][stage], runs["bf16"][1][stage]
        cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        assert cosine.min() >= 0.999, (stage, float(cosine.min()))
    for direction, metrics in runs["fp32"][0].items():
        assert runs["bf16"][0][direction]["mAP"] == pytest.approx(metrics["mAP"], abs=0.3), direction


def _pair(demo):
    from lsmrl.analysis.attention import EmbeddingSimilarityTarget
    from lsmrl.engine.data import eval_loader

    model, dataset = demo
    query = next(t for t in dataset.test if t.modality == "infrared")
    gallery = next(t for t in dataset.test if t.modality == "visible" and t.pid == query.pid)
    batch = next(iter(eval_loader([query, gallery], 6, model.config.image_size, dataset.test_sampling, 2)))
    with torch.no_grad():
        embedding = model(batch["frames"][1:], ["visible"])["embedding"][0]
    return batch["frames"][0], EmbeddingSimilarityTarget(embedding)


@pytest.mark.slow
def test_occlusion_maps_agree_across_precisions(demo):
    from lsmrl.analysis.attention import occlusion_maps

    model, _ = demo
    frames, target = _pair(demo)
    fp32 = occlusion_maps(model, frames, "infrared", target, precision="fp32")
    bf16 = occlusion_maps(model, frames, "infrared", target, precision="bf16")
    assert bf16.score == pytest.approx(fp32.score, abs=2e-3)
    assert np.corrcoef(fp32.raw.ravel(), bf16.raw.ravel())[0, 1] > 0.99
    # the patch that matters most is the same up to the score's own tolerance (near-ties may swap places)
    assert fp32.raw.flat[bf16.raw.argmax()] >= fp32.raw.max() - 2e-3


def test_gradcam_takes_fp32_gradients_inside_a_bf16_region(demo):
    from lsmrl.analysis.attention import gradcam_maps

    model, _ = demo
    frames, target = _pair(demo)
    reference = gradcam_maps(model, frames, "infrared", target)
    with dev.autocast_context("cpu", "bf16"):
        inside = gradcam_maps(model, frames, "infrared", target)
    assert reference.raw.max() > 0
    np.testing.assert_array_equal(inside.raw, reference.raw)


def test_eval_and_extract_take_a_precision_flag():
    from lsmrl.cli import build_parser

    for command in ("eval", "extract"):
        extra = ["--json", "m.json"] if command == "eval" else ["--out", "f.npz"]
        args = build_parser(command).parse_args([command, "--checkpoint", "c.safetensors", "--data-root", "d", *extra,
                                          "--precision", "bf16"])
        assert args.precision == "bf16"
        assert build_parser(command).parse_args([command, "--checkpoint", "c", "--data-root", "d", *extra]).precision == "auto"
        with pytest.raises(SystemExit):
            build_parser(command).parse_args([command, "--checkpoint", "c", "--data-root", "d", *extra, "--precision", "fp16"])
