"""The entry point: ``python app/main.py`` from the repository root (the sys.path trap), its flags, and a Blocks
build free of gradio deprecation warnings."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # as a user runs it: nothing extra on the path
    env.update(GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")
    return env


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "app/main.py", *args], cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=timeout)


def test_help_runs_as_a_script_from_the_repo_root():
    """Python puts app/, not the root, on sys.path: main.py must make `app` and `lsmrl` importable itself."""
    result = _run("--help")
    assert result.returncode == 0, result.stderr
    for flag in ("--checkpoint", "--compare-checkpoint", "--dataset", "--data-root", "--host", "--port", "--share",
                 "--build-cache"):
        assert flag in result.stdout
    assert "hitsz-vcm" in result.stdout and "buptcampus" in result.stdout


def test_a_missing_checkpoint_is_reported_in_words_before_anything_starts(tmp_path):
    result = _run("--checkpoint", str(tmp_path / "nope.safetensors"), "--port", "0", timeout=60)
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr
    result = _run("--dataset", "hitsz-vcm", timeout=60)
    assert result.returncode == 2 and "--data-root is required" in result.stderr


def test_host_and_port_come_from_the_flags_or_gradio_environment(monkeypatch):
    from app.main import DEFAULT_HOST, DEFAULT_PORT, build_parser

    args = build_parser().parse_args([])
    assert args.host is None and args.port is None  # resolved at launch: flag, else GRADIO_SERVER_*, else default
    assert (DEFAULT_HOST, DEFAULT_PORT) == ("127.0.0.1", 7860)
    args = build_parser().parse_args(["--host", "0.0.0.0", "--port", "9000", "--share"])
    assert (args.host, args.port, args.share) == ("0.0.0.0", 9000, True)


def _blocks_warnings(build) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build()
    # asyncio's "unclosed event loop" notes come from gradio's internals, not from deprecated usage
    return [w for w in caught if not issubclass(w.category, ResourceWarning)]


def test_building_the_blocks_raises_no_gradio_deprecation_warning(tmp_path):
    from app import config as app_config
    from app import resources as app_resources

    app_config.configure_environment()
    import gradio as gr

    from app.main import build_app

    # the check sees gradio's Gradio-6 migration warnings (a positive control) ...
    control = _blocks_warnings(lambda: gr.Blocks(theme=gr.themes.Soft()).__enter__().__exit__(None, None, None))
    assert any("launch()" in str(w.message) for w in control)
    # ... and the app's Blocks emit none (nothing is loaded: the resources are never started)
    resources = app_resources.Resources(app_config.AppConfig.resolve(checkpoint=tmp_path / "none.safetensors",
                                                                cache_dir=tmp_path))
    demos = []
    found = _blocks_warnings(lambda: demos.append(build_app(resources, start=False)))
    assert not found, [f"{w.category.__name__}: {w.message}" for w in found]
    demo = demos[0]
    named = [fn.api_name for fn in demo.fns.values()]
    assert all(named), "every event has an api_name"
    public = {fn.api_name for fn in demo.fns.values() if fn.api_visibility == "public"}
    assert {"retrieve", "retrieve_video", "attention", "diffusion", "modality_gap", "failures"} <= public


@pytest.mark.parametrize("value,expected", [("ir", "infrared"), ("RGB", "visible"), ("visible", "visible")])
def test_modality_aliases(value, expected):
    from app.validation import check_modality

    assert check_modality(value) == expected
