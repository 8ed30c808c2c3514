"""``tools/soak.py``: the soak's figures from its call records and samples, and its call mix."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.soak import SoakGoal, call_mix, folder_mb, summarise


def _raw(records, samples, wall=180.0, errors=()):
    return {"records": records, "samples": samples, "wall_s": wall, "errors": list(errors)}


def test_summary_of_a_steady_run():
    # first minute: latencies 1..20 (x0.1 s); last minute (t >= 120 s): the same, so the ratio is 1
    first = [(i * 2.0, 0.1 * (i + 1), "retrieve", True) for i in range(20)]
    last = [(120.0 + i * 2.0, 0.1 * (i + 1), "attention", True) for i in range(20)]
    samples = [(0.0, 1000.0, 1.0), (90.0, 1050.0, 3.0), (180.0, 1100.0, 2.0)]
    out = summarise(_raw(first + last, samples), rss_start=1000.0)
    # numpy's linear percentile of 0.1..2.0 at 95: 0.1 * (1 + 0.95 * 19) = 1.905
    assert out["p95_s_first_minute"] == pytest.approx(1.905) and out["p95_s_last_minute"] == pytest.approx(1.905)
    assert out["last_over_first"] == 1.0 and out["calls"] == 40 and out["errors"] == 0
    assert out["calls_by_endpoint"] == {"retrieve": 20, "attention": 20}
    assert out["rss_growth"] == pytest.approx(0.1) and out["rss_max_mb"] == 1100.0 and out["temp_dir_mb_max"] == 3.0
    assert out["meets_goal"]  # 10% growth < 15%, 3 MB < 500 MB, 1.0 <= 1.2


def test_growth_slowdown_and_errors_each_miss_the_goal():
    calls = [(i * 2.0, 0.5, "retrieve", True) for i in range(90)]
    samples = [(0.0, 1000.0, 1.0), (180.0, 1000.0, 1.0)]
    assert summarise(_raw(calls, samples), rss_start=1000.0)["meets_goal"]
    grown = summarise(_raw(calls, [(0.0, 1000.0, 1.0), (180.0, 1200.0, 1.0)]), rss_start=1000.0)
    assert grown["rss_growth"] == pytest.approx(0.2) and not grown["meets_goal"]
    slower = [(at, 0.5 if at < 60 else 0.7, name, ok) for at, _, name, ok in calls]
    slow = summarise(_raw(slower, samples), rss_start=1000.0)
    assert slow["last_over_first"] == pytest.approx(1.4) and not slow["meets_goal"]
    failed = summarise(_raw(calls, samples, errors=["/retrieve: boom"]), rss_start=1000.0)
    assert failed["errors"] == 1 and not failed["meets_goal"]
    full = summarise(_raw(calls, [(0.0, 1000.0, 600.0)]), rss_start=1000.0, goal=SoakGoal(max_temp_dir_mb=500.0))
    assert not full["meets_goal"]


def test_the_mix_calls_every_endpoint_with_the_queries_in_turn():
    queries = [("q1", "infrared_to_visible"), ("q2", "visible_to_infrared"), ("q3", "infrared_to_visible"),
               ("q4", "visible_to_infrared")]
    mix = call_mix(queries, Path("clip.mp4"), "infrared")
    assert {name for name, _ in mix} == {"retrieve", "retrieve_video", "attention", "modality_gap", "detect_people",
                                         "impostors", "diffusion", "export_ranking"}
    assert [args[0] for name, args in mix if name == "retrieve"] == ["q1", "q2", "q3", "q4"]
    assert ("retrieve", ["q2", "visible_to_infrared", 10]) in mix


def test_folder_size(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.bin").write_bytes(b"\0" * 2**20)
    (tmp_path / "y.bin").write_bytes(b"\0" * 2**19)
    assert folder_mb(tmp_path) == pytest.approx(1.5)
