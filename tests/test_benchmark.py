"""``python tools/bench.py``: the FLOP counts, the pieces of ``bench all`` and the README report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lsmrl.model.backbone import BackboneConfig, build_clip
from lsmrl.model.stfl import STFL
from tests.helpers import tiny_model
from tools import bench, bench_flops, bench_report, bench_speed


# ----------------------------------------------------------------------------- FLOPs
@pytest.fixture(scope="module")
def mini_visual():
    torch.manual_seed(0)
    return build_clip(BackboneConfig("lsmrl-mini", (128, 64))).visual.eval()


def test_framewise_count_matches_the_closed_form(mini_visual):
    frames = torch.randn(1, 4, 3, 128, 64)
    stfl = STFL(mini_visual, bench_flops.variant_config("frame-wise", 4, len(mini_visual.transformer.resblocks)))
    counted = bench_flops.count_flops(stfl, frames)
    width = mini_visual.transformer.width
    tokens = 1 + mini_visual.grid_size[0] * mini_visual.grid_size[1]
    blocks = len(mini_visual.transformer.resblocks)
    expected = blocks * bench_flops.expected_block_flops(width, tokens, sequences=4)
    # the blocks are all but the patch embedding and the projection: within 5%
    assert counted["total"] == pytest.approx(expected, rel=0.05)
    assert counted["attention"] == blocks * 4 * 4 * tokens**2 * width


def test_vitb16_count_sees_the_fused_fast_path():
    """ViT-B/16's 12 heads take nn.MultiheadAttention's fused fast path in eval/no_grad mode, which hides the
    QKV and output projections from FlopCounterMode (a 3-head miniature model takes the slow path and cannot
    show it). The count must match the closed form anyway, and leave the fast-path switch as it found it."""
    torch.manual_seed(0)
    visual = build_clip(BackboneConfig("ViT-B-16", (256, 128))).visual.eval()  # random init: shapes only
    assert visual.transformer.resblocks[0].attn.num_heads == 12
    stfl = STFL(visual, bench_flops.variant_config("frame-wise", 2, len(visual.transformer.resblocks)))
    assert torch.backends.mha.get_fastpath_enabled()
    counted = bench_flops.count_flops(stfl, torch.randn(1, 2, 3, 256, 128))
    assert torch.backends.mha.get_fastpath_enabled()  # restored
    expected = bench_flops.expected_tower_flops(visual, num_frames=2)
    assert counted["total"] == pytest.approx(expected, rel=0.02)
    assert expected == pytest.approx(45.4e9, rel=0.01)  # 22.7 GFLOPs a 256x128 frame
    assert bench_flops.count_flops_from_shapes(stfl, (1, 2, 3, 256, 128)) == counted  # fake tensors: same count


def test_joint_attention_costs_more_than_stfl(mini_visual):
    frames = torch.randn(1, 8, 3, 128, 64)
    layers = len(mini_visual.transformer.resblocks)
    totals = {v: bench_flops.count_flops(STFL(mini_visual, bench_flops.variant_config(v, 8, layers)), frames)["total"]
              for v in bench_flops.VARIANTS}
    assert totals["frame-wise"] <= totals["stfl"] < totals["joint"]


def test_model_flops_add_up_to_the_visual_tower():
    model = tiny_model().eval()
    frames = torch.randn(2, 4, 3, 128, 64)
    whole = bench_speed.count_model_flops(model, frames, ["visible", "infrared"])
    tower = bench_flops.count_flops(model.stfl, frames)["total"]
    assert tower <= whole <= 1.05 * tower  # SD, CMI and the neck are small next to the ViT


# ----------------------------------------------------------------------------- bench all pieces
def test_matmul_peak_and_tracker_in_both_precisions():
    peak = bench_speed.matmul_peak(sizes=(128, 256), repeats=2)
    assert peak["matmul_gflops"] > 0 and set(peak["matmul_gflops_by_size"]) == {"128", "256"}
    bf16 = bench_speed.matmul_peak(sizes=(256,), repeats=3, precision="bf16")
    assert set(bf16) == {"matmul_bf16_gflops", "matmul_bf16_gflops_by_size"} and bf16["matmul_bf16_gflops"] > 0
    for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        tracker = bench_speed.PeakTracker(256, precision=precision)
        rate = tracker.probe()
        assert tracker.gflops == rate > 0 and tracker.probes == 1 and tracker._out.dtype == dtype


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_extraction_throughput_of_a_tiny_model(precision):
    tracker = bench_speed.PeakTracker(256, precision=precision)
    out = bench_speed.extraction_throughput(tiny_model(), num_frames=4, batch_sizes=(1, 2), repeats=1, peak=tracker,
                                      precision=precision)
    assert out["precision"] == precision
    assert out["tracklets_per_s"] > 0 and out["best_batch"] in (1, 2)
    assert [row["batch"] for row in out["by_batch"]] == [1, 2]
    assert out["share_of_peak"] == pytest.approx(out["gflops_per_s"] / tracker.gflops, abs=1e-3)


def test_flops_table_keys_and_the_stfl_goal():
    table = bench_flops.flops_table((128, 64), (4, 8), model_name="lsmrl-mini")
    assert table["flops_frames"] == [4, 8]
    for t in (4, 8):
        gflops = table[f"flops_t{t}_gflops"]
        assert set(gflops) == set(bench_flops.VARIANTS)
        assert table[f"stfl_flops_ratio_t{t}"] == pytest.approx(gflops["stfl"] / gflops["frame-wise"], abs=2e-3)
        assert 1.0 <= table[f"stfl_flops_ratio_t{t}"] <= bench_flops.STFL_FLOPS_GOAL < table[f"joint_flops_ratio_t{t}"]
    assert table["flops_t8_gflops"]["frame-wise"] == pytest.approx(2 * table["flops_t4_gflops"]["frame-wise"],
                                                                    rel=1e-2)  # frame-wise is linear in T
    assert table["joint_flops_ratio_t8"] > table["joint_flops_ratio_t4"]  # joint attention is quadratic in T
    assert table["stfl_flops_goal_met"] is True


def test_cosine_topk_matches_a_full_sort():
    rng = np.random.default_rng(0)
    gallery = rng.standard_normal((500, 16)).astype(np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    query = gallery[42] + 0.01
    order, scores = bench_speed.cosine_topk(query, gallery, 10)
    reference = np.argsort(-(gallery @ query), kind="stable")[:10]
    assert order.tolist() == reference.tolist() and order[0] == 42
    assert np.all(np.diff(scores) <= 0)
    assert len(bench_speed.cosine_topk(query, gallery[:5], 10)[0]) == 5


def test_retrieval_latency_keys():
    out = bench_speed.retrieval_latency(16, sizes=(1_000, 10_000), repeats=5)
    for label in ("1k", "10k"):
        assert 0 < out[f"retrieve_p50_ms_{label}"] <= out[f"retrieve_p95_ms_{label}"]


def test_app_timings_skip_without_the_app(monkeypatch, tmp_path):
    monkeypatch.setattr(bench, "REPO", tmp_path)
    out = bench.app_timings()
    assert out["app_start_s"] is None and out["video_query_s"] is None
    assert "tools/app_perf.py" in out["notes"]["app"]
    from tools import app_perf as perf

    monkeypatch.setattr(perf, "REPO", tmp_path)
    out = perf.app_timings()
    assert out["app_start_s"] is None and out["video_query_s"] is None
    assert "app/main.py" in out["notes"]["app"]


def test_the_library_never_imports_gradio():
    import subprocess
    import sys

    code = ("import sys, tools.bench, lsmrl.analysis, lsmrl.analysis.explorer, lsmrl.engine.trainer;"
            "print(any(m.split('.')[0] in ('gradio', 'gradio_client', 'app') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_sample_query_video_has_16_frames(tmp_path):
    from lsmrl.data.video import probe_video
    from tools.app_perf import sample_query_video

    path, modality = sample_query_video(tmp_path / "q.mp4")
    assert modality == "infrared" and probe_video(path).num_frames == 16


# ----------------------------------------------------------------------------- the README report
RESULT = {
    "date": "2026-01-01 00:00 UTC",
    "machine": {"cpu": "Test CPU", "cores": 2, "torch_threads": 2, "torch": "2.14.1", "load_1min_start": 0.1},
    "matmul_gflops": 300.0, "vitb16_extract_gflops": 200.0, "vitb16_share_of_peak": 0.667,
    "vitb16_extract_tracklets_per_s": 1.5, "vitb16_extract": {"image_size": [256, 128], "frames": 6},
    "mini_extract_tracklets_per_s": 40.0, "mini_extract_gflops": 50.0,
    "matmul_bf16_gflops": 600.0, "inference_precision_auto": "bf16", "vitb16_extract_bf16_gflops": 330.0,
    "vitb16_bf16_share_of_peak": 0.55, "vitb16_extract_bf16_tracklets_per_s": 2.5,
    "mini_extract_bf16_tracklets_per_s": 80.0, "mini_bf16_speedup": 2.0, "flops_frames": [8, 24],
    "flops_t8_gflops": {"frame-wise": 181.5, "stfl": 182.3, "joint": 215.9},
    "flops_t24_gflops": {"frame-wise": 544.5, "stfl": 546.9, "joint": 855.8},
    "stfl_flops_ratio_t8": 1.0045, "joint_flops_ratio_t8": 1.1893,
    "stfl_flops_ratio_t24": 1.0045, "joint_flops_ratio_t24": 1.5718,
    "retrieve_dim": 128, "retrieve_top_k": 10, "retrieve_p50_ms_1k": 0.02, "retrieve_p95_ms_1k": 0.03,
    "retrieve_p95_ms_10k": 0.3, "retrieve_p95_ms_100k": 3.5,
    "umap_cold_s": 20.0, "umap_cached_s": 0.03, "app_start_s": None, "video_query_s": None,
    "load_test": {"retrieve": {"calls": 50, "p50_s": 0.5, "p95_s": 0.9, "errors": 0, "single_s": 0.2,
                               "p95_over_single": 4.5, "throughput_per_s": 48.0, "floor": {"p95_s": 0.8},
                               "compute_floor_s": 0.5, "bound_s": 0.8, "p95_over_bound": 1.125, "meets_goal": True},
                  "goal_over_bound": 1.15,
                  "floor": {"retrieve": {"calls": 50, "p50_s": 0.4, "p95_s": 0.8, "errors": 0, "single_s": 0.1,
                                         "p95_over_single": 8.0}}},
    "notes": {"app": "skipped: app/main.py does not exist yet"},
}


def test_report_has_every_figure_and_the_machine():
    text = bench_report.render_report(RESULT)
    for needle in ("Test CPU", "2026-01-01", "300.0 GFLOP/s", "67% of the fp32 peak", "600.0 GFLOP/s",
                   "`auto` precision here: bf16", "330.0 GFLOP/s = 55% of the bf16 peak",
                   "goal: at least 60% of the bf16 peak (missed)", "80.0 tracklets/s = 2.00x fp32",
                   "goal: at least 1.8x fp32 (met)",
                   "| FLOPs of one tracklet at T=24 (ViT-B/16): frame-wise / STFL / joint attention | 544.5 / 546.9 / "
                   "855.8 GFLOPs; STFL 1.004x, joint 1.572x | goal: STFL at most 1.03x (met)", "p95 0.03 ms",
                   "p95 3.50 ms", "20.0 s", "0.030 s", "| app start to first page (`python app/main.py`) | n/a |",
                   "50 concurrent `/retrieve`", "0 errors", "- app: skipped",
                   "| load: 50 concurrent `/retrieve` calls over loopback | p50 0.50 s, p95 0.90 s, 0 errors, 48.0 "
                   "calls/s | bound 0.80 s = max(no-op floor p95 0.80 s, compute floor 0.50 s); p95/bound 1.12x "
                   "(goal: at most 1.15x, 0 errors) (met) |",
                   "| load, no-op Gradio floor: 50 concurrent `/retrieve` calls over loopback | p50 0.40 s, p95 0.80 s, "
                   "0 errors | single call 0.100 s; the same API with empty handlers"):
        assert needle in text, needle
    header = [line for line in text.splitlines() if line.startswith("| what")]
    assert header == ["| what | measured | note |"]


def test_update_readme_replaces_only_the_marked_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n\ntext\n")
    assert bench_report.update_readme(readme, "first")
    assert readme.read_text().endswith(f"## Performance\n\n{bench_report.PERF_START}\nfirst\n{bench_report.PERF_END}\n")
    readme.write_text(readme.read_text() + "\n## After\n\nkept\n")
    assert bench_report.update_readme(readme, "second")
    text = readme.read_text()
    assert "first" not in text and "second" in text and text.endswith("## After\n\nkept\n")
    assert text.count(bench_report.PERF_START) == 1
    assert not bench_report.update_readme(readme, "second")  # idempotent


def test_cli_report_and_missing_json(tmp_path, capsys):
    data = tmp_path / "perf.json"
    data.write_text(json.dumps(RESULT))
    readme = tmp_path / "README.md"
    readme.write_text("# T\n")
    assert bench.main(["report", "--json", str(data), "--readme", str(readme)]) == 0
    assert "300.0 GFLOP/s" in readme.read_text()
    assert bench.main(["report", "--json", str(tmp_path / "nope.json"), "--readme", str(readme)]) == 1
    assert "bench.py all --json" in capsys.readouterr().err
    assert bench.main(["all"]) == 1


def test_cli_bench_model_counts_without_timing(capsys):
    assert bench.main(["model", "--clip-model", "lsmrl-mini", "--image-size", "128", "64", "--frames", "4",
                     "--no-timing"]) == 0
    out = capsys.readouterr().out
    assert "| 4 | stfl |" in out and "| nan |" in out  # counted, not timed


def test_by_cpu_table_keeps_the_newest_run_of_each_cpu_kind():
    amd = {"machine": {"cpu": "AMD EPYC", "cpu_flags": ["avx2", "avx512_bf16"], "load_1min_start": 0.2},
           "matmul_gflops": 100.0, "matmul_bf16_gflops": 400.0, "inference_precision_auto": "bf16",
           "vitb16_bf16_share_of_peak": 0.61, "mini_bf16_speedup": 1.9}
    old_amd = {**amd, "date": "2026-12-01 00:00 UTC", "mini_bf16_speedup": 1.1}
    new_amd = {**amd, "date": "2026-12-07 18:00 UTC", "load_test": {"retrieve": {"p95_over_bound": 1.1},
                                                                     "retrieve_video": {"p95_over_bound": 1.3}},
               "soak": {"errors": 0, "rss_growth": 0.05, "last_over_first": 1.02, "meets_goal": True}}
    intel = {"date": "2026-12-01 01:14 UTC", "machine": {"cpu": "Intel(R) Xeon(R) Processor", "cpu_flags": ["avx2"]},
             "matmul_gflops": 93.6, "matmul_bf16_gflops": 42.6, "inference_precision_auto": "fp32"}
    table = bench_report.render_by_cpu([new_amd, intel, old_amd]).splitlines()
    assert len(table) == 4  # header, rule, one row per CPU kind
    amd_row = next(line for line in table if line.startswith("| AMD EPYC (avx512_bf16)"))
    assert "2026-12-07" in amd_row and "1.90x" in amd_row and "61%" in amd_row and "1.10x, 1.30x" in amd_row
    assert "0 errors, memory 5.0%, last/first p95 1.02x (met)" in amd_row
    intel_row = next(line for line in table if line.startswith("| Intel(R) Xeon(R) Processor (no native bf16)"))
    assert "| fp32 |" in intel_row and intel_row.endswith("| n/a |")
    assert "By CPU kind" in bench_report.render_report(new_amd, [new_amd, intel])


def test_the_report_has_a_soak_row():
    soak = {"seconds": 600.8, "workers": 4, "calls": 10274, "errors": 0, "rss_start_mb": 1400.0, "rss_end_mb": 1470.0,
            "rss_growth": 0.05, "temp_dir_mb_max": 0.31, "p95_s_first_minute": 0.69, "p95_s_last_minute": 0.64,
            "meets_goal": True, "goal": {"max_rss_growth": 0.15, "max_temp_dir_mb": 500.0, "max_last_over_first": 1.2}}
    row = next(line for line in bench_report.render_report({**RESULT, "soak": soak}).splitlines()
               if line.startswith("| soak"))
    assert "10274 calls, 0 errors" in row and "1400 -> 1470 MiB (5.0%)" in row and "0.69 s / 0.64 s" in row
    assert row.endswith("(met) |") and "under +15%" in row
