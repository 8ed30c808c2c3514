"""Space packaging: README front matter, Dockerfile, .dockerignore, LICENSE and the optional ZeroGPU decorator.

Docker cannot run here, so these tests check that the Dockerfile's install and
start steps are the README's quick start (which CI's fresh-venv install runs),
and that the front matter matches the pins.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import types
from pathlib import Path

import pytest

from tests import space_helpers

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- helpers
def front_matter() -> dict:
    return space_helpers.front_matter(ROOT / "README.md")


def requirement_pin(name: str) -> str:
    return space_helpers.requirement_pin(ROOT / "requirements.txt", name)


def readme_quick_start() -> tuple[list[str], list[str]]:
    """(install command, start command) of the README's first quick-start line."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1]
    code = section.split("```bash", 1)[1].split("```", 1)[0]
    first = code.strip().splitlines()[0].split("#", 1)[0]
    install, start = (shlex.split(part) for part in first.split("&&"))
    return install, start


def dockerfile_instructions() -> list[tuple[str, str]]:
    return space_helpers.dockerfile_instructions(ROOT / "Dockerfile")


def docker_env() -> dict[str, str]:
    env = {}
    for instruction, args in dockerfile_instructions():
        if instruction == "ENV":
            for token in shlex.split(args):
                key, _, value = token.partition("=")
                env[key] = value
    return env


def dockerignore_excludes(path: str) -> bool:
    return space_helpers.dockerignore_excludes(path, ROOT / ".dockerignore")


# ----------------------------------------------------------------------------- front matter
def test_front_matter_is_a_gradio_space_matching_the_pins():
    meta = front_matter()
    assert meta["sdk"] == "gradio"
    assert str(meta["sdk_version"]) == requirement_pin("gradio")
    assert meta["python_version"] == "3.11"  # a string: unquoted 3.10 would read as 3.1
    assert (ROOT / meta["app_file"]).is_file() and meta["app_file"] == "app/main.py"
    assert meta["license"] == "apache-2.0"
    assert meta["suggested_hardware"] == "cpu-basic"
    assert meta["title"] and meta["emoji"]
    assert meta["colorFrom"] in {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
    assert meta["colorTo"] in {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
    assert 0 < len(meta["short_description"]) <= 60  # the Hub's limit


def test_license_is_apache_2():
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_pins_kept():
    assert requirement_pin("torch") == "2.14.1"
    assert requirement_pin("torchvision") == "0.29.1"


# ----------------------------------------------------------------------------- Dockerfile
def test_dockerfile_installs_and_starts_like_the_readme():
    install, start = readme_quick_start()
    assert install == ["pip", "install", "-r", "requirements.txt"]
    assert start == ["python", "app/main.py"]
    steps = dockerfile_instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")

    runs = [shlex.split(args) for instruction, args in steps if instruction == "RUN"]
    pip_runs = [cmd for cmd in runs if cmd[:2] in (["pip", "install"], ["python", "-m"])]
    assert len(pip_runs) == 1, f"exactly one pip install step, got {pip_runs}"
    pip = pip_runs[0]
    assert "&&" not in pip, "the install step installs requirements.txt and nothing else"
    options = [token for token in pip[2:] if token.startswith("-") and token != "-r"]
    assert set(options) <= {"--no-cache-dir"}, options
    positional = [token for token in pip[2:] if token not in options]
    assert positional == ["-r", "requirements.txt"], positional
    # requirements.txt is copied before it is installed
    names = [instruction for instruction, _ in steps]
    copy_req = next(i for i, (ins, args) in enumerate(steps) if ins == "COPY" and "requirements.txt" in args)
    assert copy_req < next(i for i, (ins, args) in enumerate(steps) if ins == "RUN" and "pip install" in args)

    cmd = [args for instruction, args in steps if instruction == "CMD"]
    assert len(cmd) == 1 and names[-1] == "CMD"
    assert json.loads(cmd[0]) == start  # exec form, the README's start command


def test_dockerfile_user_port_and_environment():
    steps = dockerfile_instructions()
    runs = " ".join(args for instruction, args in steps if instruction == "RUN")
    assert re.search(r"useradd\s+(-\S+\s+)*-u\s+1000\s+user", runs), "a uid-1000 user named user"
    users = [args for instruction, args in steps if instruction == "USER"]
    assert users and users[-1] in ("user", "1000")
    user_index = max(i for i, (ins, _) in enumerate(steps) if ins == "USER")
    pip_index = next(i for i, (ins, args) in enumerate(steps) if ins == "RUN" and "pip install" in args)
    assert user_index < pip_index, "install as the app user (packages land in ~/.local, as the template does)"
    for instruction, args in steps:
        if instruction in ("COPY", "ADD"):
            assert "--chown=user" in args, f"{instruction} {args}: files must belong to the app user"
    assert ("EXPOSE", "7860") in steps
    env = docker_env()
    assert env["GRADIO_SERVER_NAME"] == "0.0.0.0"
    assert env["GRADIO_SERVER_PORT"] == "7860"
    assert env["GRADIO_ANALYTICS_ENABLED"] == "False"
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["HOME"] == "/home/user"
    workdir = [args for instruction, args in steps if instruction == "WORKDIR"][-1]
    assert workdir in ("$HOME/app", "/home/user/app")
    # writable folders of the app user: lazily cached examples, uploads, the analysis cache
    mkdir = next(args for instruction, args in steps if instruction == "RUN" and "mkdir" in args)
    for folder in (".gradio", "cache"):
        assert f"app/{folder}" in mkdir
    assert env["GRADIO_TEMP_DIR"].startswith("/home/user/app/.gradio")


def test_dockerignore_keeps_the_app_and_drops_local_state():
    for kept in ("app/main.py", "app/gpu.py", "lsmrl/__init__.py", "lsmrl/data/video.py",
                 "lsmrl/data/datasets/synthvvi.py", "lsmrl/model/configs/lsmrl-mini.json",
                 "checkpoints/lsmrl-mini-synthvvi.safetensors", "assets/synthvvi/MANIFEST.sha256",
                 "checkpoints/cache/features-0123.npz", "assets/cache/examples/visible.mp4",
                 "requirements.txt", "README.md", "LICENSE"):
        assert not dockerignore_excludes(kept), kept
    for dropped in (".git/HEAD", "runs/x/model.safetensors", "data/synthvvi/info/a.txt", "test-artifacts/a.png",
                    "lsmrl/__pycache__/cli.cpython-311.pyc", ".gradio/cached_examples/a", "cache/umap.npz",
                    ".pytest_cache/v", ".venv/bin/python"):
        assert dockerignore_excludes(dropped), dropped
    # every file of the runtime folders goes into the image
    for folder in ("app", "lsmrl", "assets", "checkpoints"):
        for path in (ROOT / folder).rglob("*"):
            relative = path.relative_to(ROOT).as_posix()
            if path.is_file() and "__pycache__" not in relative:
                assert not dockerignore_excludes(relative), relative


# ----------------------------------------------------------------------------- optional ZeroGPU
@pytest.fixture
def gpu_module(monkeypatch):
    monkeypatch.delenv("LSMRL_DISABLE_SPACES_GPU", raising=False)
    from app import gpu

    return gpu


def test_gpu_decorator_is_a_no_op_without_spaces(gpu_module, monkeypatch):
    monkeypatch.setitem(sys.modules, "spaces", None)  # import spaces -> ImportError

    def handler(x):
        return x + 1

    assert gpu_module.gpu(handler) is handler
    assert gpu_module.gpu(duration=30)(handler) is handler
    assert gpu_module.gpu()(handler) is handler
    assert not gpu_module.gpu_available()
    with pytest.raises(TypeError):
        gpu_module.gpu(3)


def test_gpu_decorator_delegates_to_spaces_gpu(gpu_module, monkeypatch):
    calls = []
    fake = types.ModuleType("spaces")

    def GPU(fn=None, **options):  # noqa: N802 - the spaces API name
        def wrap(function):
            calls.append(options)

            def wrapped(*args, **kwargs):
                return ("on-gpu", function(*args, **kwargs))
            return wrapped
        return wrap(fn) if fn is not None else wrap

    fake.GPU = GPU
    monkeypatch.setitem(sys.modules, "spaces", fake)
    assert gpu_module.gpu_available()
    assert gpu_module.gpu(lambda x: x * 2)(3) == ("on-gpu", 6)
    assert gpu_module.gpu(duration=120)(lambda: 1)() == ("on-gpu", 1)
    assert calls == [{}, {"duration": 120}]
    monkeypatch.setenv("LSMRL_DISABLE_SPACES_GPU", "1")

    def handler():
        return 0

    assert gpu_module.gpu(handler) is handler


def test_spaces_is_not_a_runtime_dependency():
    assert "spaces" not in (ROOT / "requirements.txt").read_text().split()
