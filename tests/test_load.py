"""``tools/loadtest.py``: the queue is bounded and limited, and a small load run completes with no errors."""

from __future__ import annotations

import json

import pytest

from app import config as app_config
from app import resources as app_resources

app_config.configure_environment()

from tests.test_app_api import free_port, make_test_config  # noqa: E402
from tools import loadtest  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]


def test_the_app_queue_is_bounded_with_concurrency_limits():
    settings = loadtest.queue_settings()
    assert loadtest.queue_problems(settings) == []
    assert 0 < settings["max_size"] <= 256
    assert 1 <= settings["default_concurrency_limit"] <= 8
    assert {"retrieve", "retrieve_video"} <= set(settings["events"])
    assert settings["events"]["retrieve_video"]["concurrency_limit"] >= 1
    assert settings["max_file_size"]  # uploads are capped in bytes at the server
    assert loadtest.queue_problems({"max_size": None, "default_concurrency_limit": None, "events": {
        "retrieve": {"concurrency_limit": None, "queued": False}}}) == [
        "the queue is unbounded: call demo.queue(max_size=...)",
        "no default concurrency limit: call demo.queue(default_concurrency_limit=...)",
        "/retrieve has no concurrency limit", "/retrieve bypasses the queue"]


@pytest.mark.slow
def test_a_small_load_run_has_no_errors(tmp_path_factory, tmp_path):
    from app.main import build_app, launch_app

    resources = app_resources.Resources(make_test_config(tmp_path_factory), precompute=False)
    resources.start()
    resources.explorer(timeout=900)
    demo = build_app(resources)
    port = free_port()
    launch_app(demo, host="127.0.0.1", port=port, prevent_thread_lock=True, quiet=True)
    try:
        result = loadtest.run_load_test(f"http://127.0.0.1:{port}/", retrieve_calls=6, video_calls=2,
                                        timeout_s=300, log=lambda *_: None)
        costs = loadtest.handler_costs(repeats=2, log=lambda *_: None, resources=resources)
    finally:
        demo.close()
    loadtest.apply_bounds(result, costs, cores=2)
    for name, calls in (("retrieve", 6), ("retrieve_video", 2)):
        assert 0 < costs[name]["wall_s"] and 0 < costs[name]["cpu_s"]
        assert result[name]["compute_floor_s"] == pytest.approx(calls * costs[name]["cpu_s"] / 2, abs=1e-3)
        assert result[name]["p95_over_bound"] > 0 and result[name]["throughput_per_s"] > 0
        figures = result[name]
        assert figures["calls"] == calls and figures["ok"] == calls and figures["errors"] == 0, figures
        assert 0 < figures["p50_s"] <= figures["p95_s"] <= figures["max_s"]
        assert figures["single_s"] > 0 and figures["p95_over_single"] > 0
    text = loadtest.format_result(result)
    assert "| /retrieve | 6 | 0 |" in text and "| /retrieve_video | 2 | 0 |" in text

    bench_json = tmp_path / "perf.json"
    bench_json.write_text(json.dumps({"matmul_gflops": 1.0}))
    loadtest.merge_into(bench_json, result)
    merged = json.loads(bench_json.read_text())
    assert merged["matmul_gflops"] == 1.0 and merged["load_test"]["retrieve"]["calls"] == 6

    from tools.bench_report import render_report

    assert "6 concurrent `/retrieve` calls" in render_report(merged)


def test_cli_refuses_unbounded_counts(capsys):
    with pytest.raises(SystemExit):
        loadtest.main(["--retrieve", "1000", "--url", "http://127.0.0.1:1/"])
    assert "between 0 and 500" in capsys.readouterr().err


def test_loadtest_runs_as_a_script_from_the_repo_root():
    import subprocess
    import sys

    root = app_config.REPO_ROOT
    result = subprocess.run([sys.executable, "tools/loadtest.py", "--help"], cwd=root, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--retrieve-video" in result.stdout


def _api_shape(demo, name: str) -> tuple[list[str], list[str], object]:
    fn = next(f for f in demo.fns.values() if f.api_name == name)
    return ([type(block).__name__ for block in fn.inputs], [type(block).__name__ for block in fn.outputs],
            fn.concurrency_limit)


def test_the_no_op_floor_app_has_the_apps_load_tested_api(tmp_path):
    """The floor is only a floor if its endpoints take and return what the app's do (same files per answer)."""
    from app.main import build_app

    app_demo = build_app(app_resources.Resources(app_config.AppConfig.resolve()), start=False)
    floor_demo, folder = loadtest.build_floor_app(tmp_path / "floor")
    for name in ("retrieve", "retrieve_video"):
        assert _api_shape(floor_demo, name) == _api_shape(app_demo, name), name
    images = sorted(folder.glob("*.png"))
    assert len(images) == 11  # the query strip and 10 result strips of an answer
    from PIL import Image

    assert {Image.open(path).size for path in images} == {loadtest.FLOOR_STRIP_SIZE}
    assert all(60_000 < path.stat().st_size < 120_000 for path in images)  # the demo's strips: 70-85 KB


def test_the_goal_is_against_the_larger_of_the_two_floors():
    result = {"retrieve": {"calls": 50, "p95_s": 3.3, "errors": 0},
              "retrieve_video": {"calls": 10, "p95_s": 3.0, "errors": 1},
              "floor": {"retrieve": {"calls": 50, "p95_s": 3.0, "p50_s": 2.0, "errors": 0, "throughput_per_s": 20.0},
                        "retrieve_video": {"calls": 10, "p95_s": 0.3, "p50_s": 0.2, "errors": 0}}}
    costs = {"retrieve": {"cpu_s": 0.05, "wall_s": 0.04}, "retrieve_video": {"cpu_s": 0.57, "wall_s": 0.5}}
    loadtest.apply_bounds(result, costs, cores=2)
    retrieve, video = result["retrieve"], result["retrieve_video"]
    assert retrieve["compute_floor_s"] == pytest.approx(50 * 0.05 / 2)  # 1.25 s: below Gradio's own floor
    assert retrieve["floor"]["p95_s"] == 3.0 and retrieve["bound_s"] == 3.0
    assert retrieve["p95_over_bound"] == pytest.approx(1.1) and retrieve["meets_goal"] is True
    assert video["compute_floor_s"] == pytest.approx(10 * 0.57 / 2)  # 2.85 s: the work, above the no-op 0.3 s
    assert video["bound_s"] == pytest.approx(2.85) and video["p95_over_bound"] == pytest.approx(3.0 / 2.85, abs=1e-3)
    assert video["meets_goal"] is False  # within 1.15x, but one call failed
    no_floors = {"retrieve": {"calls": 5, "p95_s": 1.0, "errors": 0}}
    loadtest.apply_bounds(no_floors, None, cores=2)
    assert "bound_s" not in no_floors["retrieve"] and "meets_goal" not in no_floors["retrieve"]


def test_file_urls_are_every_file_of_an_answer_once():
    answer = [{"query": {"tid": "a"}}, "text", {"path": "/t/q.png", "url": "http://h/q.png"},
              [{"image": {"path": "/t/1.png", "url": "http://h/1.png"}, "caption": "rank 1"},
               {"image": {"path": "/t/2.png", "url": "http://h/2.png"}, "caption": None}],
              {"url": "http://not-a-file"}]
    assert loadtest._file_urls(answer) == ["http://h/q.png", "http://h/1.png", "http://h/2.png"]
