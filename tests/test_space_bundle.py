"""The Hugging Face Space bundle (``python tools/space.py export``), offline.

The bundle is exported once from this checkout; the tests check it the way the Hub
would: Git's own attribute matching (``git check-attr``) on every binary, the
front matter against the pins, nothing outside what the app needs, the app
started *inside* the bundle folder answering ``/retrieve``, and the push against a
mocked ``HfApi`` (the network push cannot run here). A small synthetic checkout
covers the rules the real one does not exercise (stale caches, large text
files, binaries without an extension, a foreign ``--out``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.space_helpers import dockerfile_instructions, dockerignore_excludes, front_matter, requirement_pin
from tools import space_bundle
from tools.space import main as space_main
from tools.space_bundle import HUB_PLAIN_FILE_LIMIT, BundleLayout, SpaceBundleError, plan_bundle, write_bundle
from tools.space_hub import IGNORE_PATTERNS, push_bundle

ROOT = Path(__file__).resolve().parents[1]
HAS_DEMO = all((ROOT / p).is_file() for p in BundleLayout().checkpoints)
needs_demo = pytest.mark.skipif(not HAS_DEMO, reason="the demo checkpoints are not in this checkout")


def git_is_binary(path: Path) -> bool:
    """Git's rule, written out here independently of the module: a NUL byte in the first 8,000 bytes."""
    return b"\0" in path.read_bytes()[:8000]


def bundle_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def read_cache_key(path: Path) -> dict:
    """A shipped cache file's key, read here without the library (the two stored forms of lsmrl.analysis.cache)."""
    if path.suffix == ".npz":
        with zipfile.ZipFile(path) as archive:
            assert "__cache_key__.npy" in archive.namelist(), path
        return json.loads(str(np.load(path, allow_pickle=False)["__cache_key__"]))
    return json.loads(json.loads(path.read_text())["key"])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``(plan, folder)``: the gradio bundle of this checkout, written once."""
    if not HAS_DEMO:
        pytest.skip("the demo checkpoints are not in this checkout")
    plan = plan_bundle(ROOT)
    folder = write_bundle(plan, tmp_path_factory.mktemp("space") / "bundle")
    return plan, folder


# ----------------------------------------------------------------------------- what the Hub checks
def test_every_binary_is_in_large_file_storage_by_git_check_attr(exported, tmp_path):
    plan, folder = exported
    files = bundle_files(folder)
    binaries = [f for f in files if git_is_binary(folder / f)]
    assert len(binaries) > 9000  # the split's frames, checkpoints, caches, clips, the README figure
    # Git itself reads the bundle's .gitattributes (an empty repository with the bundle as its work tree).
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "g.git")], check=True)
    answer = subprocess.run(
        ["git", "--git-dir", str(tmp_path / "g.git"), "--work-tree", str(folder), "check-attr", "--stdin", "-z",
         "filter"], input="\0".join(files) + "\0", capture_output=True, text=True, check=True, cwd=folder).stdout
    fields = answer.split("\0")[:-1]
    lfs = {fields[i] for i in range(0, len(fields), 3) if fields[i + 2] == "lfs"}
    assert not set(binaries) - lfs, sorted(set(binaries) - lfs)[:5]
    assert lfs == {f for f in files if plan.storage(f) == "lfs"}  # the module's matcher agrees with Git
    large = [f for f in files if (folder / f).stat().st_size >= HUB_PLAIN_FILE_LIMIT]
    assert not set(large) - lfs


def test_front_matter_is_a_valid_gradio_space(exported):
    _, folder = exported
    meta = front_matter(folder / "README.md")
    assert meta["sdk"] == "gradio"
    assert str(meta["sdk_version"]) == requirement_pin(folder / "requirements.txt", "gradio")
    assert (folder / meta["app_file"]).is_file() and meta["app_file"] == "app/main.py"
    assert meta["python_version"] == "3.11"
    assert (folder / "README.md").read_bytes() == (ROOT / "README.md").read_bytes()


def test_nothing_outside_what_the_app_needs(exported):
    plan, folder = exported
    files = bundle_files(folder)
    assert files == [f.path for f in plan.files]
    tops = {f.split("/", 1)[0] for f in files}
    assert tops == {".gitattributes", "LICENSE", "README.md", "requirements.txt", "app", "lsmrl", "assets",
                    "checkpoints", "docs"}
    for f in files:
        assert not f.startswith(("tests/", ".git/", ".ci/", "runs/", "data/", "cache/", "tmp/")), f
        assert "__pycache__" not in f and not f.endswith(".pyc"), f
    assert not any(f.startswith("tools/") for f in files)  # developer tools live outside app/ and lsmrl/
    assert {f for f in files if f.startswith("docs/")} == {"docs/design.md", "docs/synthvvi.png",
                                                           "docs/space_install.json"}  # the README's links
    # of the evidence, only the standing across fresh draws that the Model tab reads
    from app import config as app_config

    assert {f for f in files if f.startswith("checkpoints/evidence/")} == {
        app_config.DRAWS_EVIDENCE_JSON.relative_to(ROOT).as_posix()}
    # every cache entry is for the shipped checkpoints and the shipped split (a cache of another checkpoint or
    # data is never read), and each shipped checkpoint has its features there
    from lsmrl.analysis.explorer import data_cache_key
    from lsmrl.data.registry import build_dataset

    shipped = {hashlib.sha256((folder / c).read_bytes()).hexdigest() for c in BundleLayout().checkpoints}
    data_key = data_cache_key(build_dataset("synthvvi", folder / "assets" / "synthvvi"))
    keys = [read_cache_key(folder / f) for f in files if f.startswith("checkpoints/cache/")]
    assert {k["checkpoint_sha256"] for k in keys if k["item"] == "features"} == shipped
    for key in keys:
        assert key["checkpoint_sha256"] in shipped and key["data_fingerprint"] == data_key, key
        assert all(value in shipped for name, value in key["extra"] if name.endswith("_sha256")), key
    # the split is the committed one, byte for byte
    from lsmrl.synth.export import verify_export

    assert verify_export(folder / "assets" / "synthvvi") == []


def test_the_layout_names_the_apps_files():
    from app import config as app_config

    layout = BundleLayout()
    relative = {p.relative_to(app_config.REPO_ROOT).as_posix()
                for p in (app_config.DEFAULT_CHECKPOINT, app_config.DEFAULT_BASELINE)}
    assert set(layout.checkpoints) == relative
    assert app_config.SHIPPED_CACHE.relative_to(app_config.REPO_ROOT).as_posix() == layout.shipped_cache
    assert app_config.ABLATION_JSON.relative_to(app_config.REPO_ROOT).as_posix() in layout.files
    trees = set(layout.trees)
    for folder in (app_config.DEFAULT_DATA_ROOT, app_config.EXAMPLES_DIR):
        assert folder.relative_to(app_config.REPO_ROOT).as_posix() in trees
    # what the Space runs never imports the developer tools (they are not in the bundle)
    for path in [*(ROOT / "app").rglob("*.py"), *(ROOT / "lsmrl").rglob("*.py")]:
        assert not re.search(r"^\s*(from|import)\s+tools\b", path.read_text(), re.MULTILINE), path


def test_requirements_add_the_cpu_index_and_keep_the_pins(exported):
    _, folder = exported
    bundle = (folder / "requirements.txt").read_text()
    repo = (ROOT / "requirements.txt").read_text()
    assert f"--extra-index-url {space_bundle.TORCH_CPU_INDEX}" in bundle.splitlines()
    assert bundle.endswith(repo)  # every line and pin of the repository's requirements, unchanged
    for name in ("torch", "torchvision", "gradio"):
        assert requirement_pin(folder / "requirements.txt", name) == requirement_pin(ROOT / "requirements.txt", name)


# ----------------------------------------------------------------------------- pip picks the CPU build
def _fake_wheel(index: Path, version: str) -> None:
    """A one-file index serving a metadata-only ``torch`` wheel of ``version`` (PEP 503 layout)."""
    project = index / "torch"
    project.mkdir(parents=True)
    name = f"torch-{version}-py3-none-any.whl"
    info = f"torch-{version}.dist-info"
    members = {f"{info}/METADATA": f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n",
               f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    def digest(text: str) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).decode().rstrip("=")

    record = "".join(f"{path},sha256={digest(text)},{len(text)}\n" for path, text in members.items())
    members[f"{info}/RECORD"] = record + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(project / name, "w") as archive:
        for path, text in members.items():
            archive.writestr(path, text)
    (project / "index.html").write_text(f'<html><body><a href="{name}">{name}</a></body></html>\n')


def _resolve_torch(tmp_path: Path, cpu_index: str) -> str:
    """The torch version pip picks for the bundle's pin, PyPI faked by ``pypi/`` and the CPU index by ``cpu_index``."""
    pin = requirement_pin(ROOT / "requirements.txt", "torch")
    requirements = space_bundle.space_requirements(f"torch=={pin}\n").replace(space_bundle.TORCH_CPU_INDEX,
                                                                               cpu_index)
    (tmp_path / "requirements.txt").write_text(requirements)
    report = tmp_path / "report.json"
    # no configuration file and no PIP_* variable: only the two stand-in indexes are consulted
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps",
                    "--ignore-installed", "--quiet", "--retries", "0", "--timeout", "5", "--report", str(report),
                    "--index-url", (tmp_path / "pypi").as_uri(), "-r", str(tmp_path / "requirements.txt")],
                   check=True, capture_output=True, text=True, env=env)
    return json.loads(report.read_text())["install"][0]["metadata"]["version"]


def test_pip_resolves_the_cpu_build_where_its_index_is_reachable_and_falls_back_where_not(tmp_path):
    pin = requirement_pin(ROOT / "requirements.txt", "torch")
    _fake_wheel(tmp_path / "pypi", pin)
    _fake_wheel(tmp_path / "cpu", f"{pin}+cpu")
    assert _resolve_torch(tmp_path, (tmp_path / "cpu").as_uri()) == f"{pin}+cpu"
    assert _resolve_torch(tmp_path, "http://127.0.0.1:9/whl/cpu") == pin  # nothing listens on port 9


# ----------------------------------------------------------------------------- the command
def test_dry_run_lists_every_binary_as_large_file_storage_and_writes_nothing(tmp_path, capsys):
    if not HAS_DEMO:
        pytest.skip("the demo checkpoints are not in this checkout")
    out = tmp_path / "bundle"
    assert space_main(["export", "--out", str(out), "--dry-run"]) == 0
    assert not out.exists()
    lines = capsys.readouterr().out.splitlines()
    listed = {}
    for line in lines[1:]:
        parts = line.split()
        if parts and parts[0] in ("LFS", "GIT"):
            listed[parts[-1]] = parts[0]
    plan = plan_bundle(ROOT)
    assert set(listed) == {f.path for f in plan.files}
    for f in plan.files:
        expected = "LFS" if (f.source and git_is_binary(f.source)) or f.size >= HUB_PLAIN_FILE_LIMIT else "GIT"
        assert listed[f.path] == expected, f.path
    assert re.search(r"^\d+ files, .*: \d+ in large-file storage", lines[-2])


def test_docker_bundle_builds_from_its_own_requirements_and_starts_its_app_file(tmp_path):
    if not HAS_DEMO:
        pytest.skip("the demo checkpoints are not in this checkout")
    assert "Dockerfile" not in {f.path for f in plan_bundle(ROOT).files}  # only with --sdk docker
    folder = write_bundle(plan_bundle(ROOT, sdk="docker"), tmp_path / "docker")
    files = bundle_files(folder)
    assert {"Dockerfile", ".dockerignore"} <= set(files)
    meta = front_matter(folder / "README.md")
    assert meta["sdk"] == "docker" and meta["app_port"] == 7860 and "sdk_version" not in meta
    assert meta["title"] == front_matter(ROOT / "README.md")["title"]
    steps = dockerfile_instructions(folder / "Dockerfile")
    runs = [args for instruction, args in steps if instruction == "RUN" and "pip install" in args]
    assert runs == ["pip install --no-cache-dir -r requirements.txt"]  # the bundle's CPU-sized requirements
    assert "--extra-index-url" in (folder / "requirements.txt").read_text()
    copied = [args for instruction, args in steps if instruction == "COPY"]
    assert copied[0].split()[-2:] == ["requirements.txt", "requirements.txt"] and copied[-1].split()[-2] == "."
    assert json.loads([args for instruction, args in steps if instruction == "CMD"][0]) == ["python", meta["app_file"]]
    assert ("EXPOSE", str(meta["app_port"])) in steps
    # the build context keeps every file the app needs
    needed = [f for f in files if f not in ("Dockerfile", ".dockerignore")]
    assert not [f for f in needed if dockerignore_excludes(f, folder / ".dockerignore")]


# ----------------------------------------------------------------------------- rules on a small checkout
@pytest.fixture(scope="module")
def split_key():
    """The analysis-cache data key of the committed split (the small checkouts below serve it)."""
    from lsmrl.analysis.explorer import data_cache_key
    from lsmrl.data.registry import build_dataset

    return data_cache_key(build_dataset("synthvvi", ROOT / "assets" / "synthvvi"))


def _cache_entry(folder: Path, name: str, checkpoint: str | None, data: str, *, item: str = "features",
                 version: str = "analysis-1", extra: list | None = None) -> None:
    key = {"data_fingerprint": data, "extra": extra or [], "item": item, "version": version,
           **({"checkpoint_sha256": checkpoint} if checkpoint else {})}
    if name.endswith(".npz"):
        np.savez(folder / name, x=np.zeros(2), __cache_key__=np.array(json.dumps(key)))
    else:
        (folder / name).write_text(json.dumps({"key": json.dumps(key), "value": 1}))


def _small_checkout(root: Path, split_key: str) -> BundleLayout:
    (root / "app").mkdir(parents=True)
    (root / "app" / "main.py").write_text("print('app')\n")
    (root / "app" / "__pycache__").mkdir()
    (root / "app" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\0compiled")
    (root / "app" / "logo").write_bytes(b"\x89PNG\0no extension")
    (root / "app" / "notes.dat").write_text("text data\n")
    (root / "app" / "blob.dat").write_bytes(b"\0\1binary data")
    (root / "app" / "big.txt").write_bytes(b"a" * HUB_PLAIN_FILE_LIMIT)  # text, but at the Hub's plain-file limit
    (root / "ckpt").mkdir()
    (root / "ckpt" / "m.safetensors").write_bytes(b"\0weights")
    (root / "ckpt" / "m.json").write_text("{}\n")
    sha = hashlib.sha256(b"\0weights").hexdigest()
    cache = root / "ckpt" / "cache"
    cache.mkdir()
    _cache_entry(cache, "features-mine.npz", sha, split_key)
    _cache_entry(cache, "features-other-checkpoint.npz", "f" * 64, split_key)
    _cache_entry(cache, "features-other-data.npz", sha, "0" * 16 + "-" + "0" * 16)
    _cache_entry(cache, "features-old-version.npz", sha, split_key, version="analysis-0")
    _cache_entry(cache, "features-no-checkpoint.npz", None, split_key)
    _cache_entry(cache, "table-mine.json", sha, split_key, item="gap_table", extra=[["baseline_sha256", sha]])
    _cache_entry(cache, "table-baseline-gone.json", sha, split_key, item="gap_table",
                 extra=[["baseline_sha256", "e" * 64]])
    (cache / "notes.txt").write_text("not a cache entry\n")
    (root / "LICENSE").write_text("license\n")
    (root / "docs").mkdir()
    (root / "docs" / "fig one.png").write_bytes(b"\x89PNG\0figure")
    (root / "docs" / "unlinked.md").write_text("not linked\n")
    (root / "README.md").write_text(
        "---\ntitle: T\nsdk: gradio\nsdk_version: 6.31.0\napp_file: app/main.py\npython_version: \"3.11\"\n---\n\n# T\n"
        '![figure](docs/fig%20one.png "the figure") [site](https://example.org/x.png) [out](docs/../../secret.txt)\n')
    (root.parent / "secret.txt").write_text("outside the checkout\n")
    (root / "requirements.txt").write_text("gradio==6.31.0\n")
    return BundleLayout(trees=("app",), checkpoints=("ckpt/m.safetensors",),
                        files=("LICENSE",), shipped_cache="ckpt/cache", data_root=str(ROOT / "assets" / "synthvvi"))


def test_small_checkout_rules(tmp_path, split_key):
    layout = _small_checkout(tmp_path / "src", split_key)
    plan = plan_bundle(tmp_path / "src", layout=layout)
    paths = {f.path for f in plan.files}
    assert paths == {".gitattributes", "LICENSE", "README.md", "requirements.txt", "app/main.py", "app/logo",
                     "app/notes.dat", "app/blob.dat", "app/big.txt", "ckpt/m.safetensors", "ckpt/m.json",
                     "ckpt/cache/features-mine.npz", "ckpt/cache/table-mine.json", "docs/fig one.png"}
    skipped = dict(plan.skipped)
    for stale in ("features-other-checkpoint.npz", "features-other-data.npz", "features-old-version.npz",
                  "features-no-checkpoint.npz", "table-baseline-gone.json"):
        assert skipped[f"ckpt/cache/{stale}"].startswith("cache of other checkpoints, data or analysis version")
    assert "not an analysis-cache file" in skipped["ckpt/cache/notes.txt"]
    assert "outside the checkout" in skipped["docs/../../secret.txt"]
    # a README link's title and %20 escape; a binary whose name has a space is named by extension, not path
    # a binary sharing its extension with a text file, and one without an extension, are named by path
    assert "/app/blob.dat" in plan.lfs_patterns and "/app/logo" in plan.lfs_patterns
    assert "*.dat" not in plan.lfs_patterns and "/app/big.txt" in plan.lfs_patterns
    assert {p for p in plan.lfs_patterns if p.startswith("*.")} == {"*.npz", "*.png", "*.safetensors"}
    assert {plan.storage(p) for p in ("app/blob.dat", "app/logo", "app/big.txt", "docs/fig one.png")} == {"lfs"}
    assert plan.storage("app/notes.dat") == plan.storage("app/main.py") == "git"
    assert plan.uncovered_binaries() == []


def test_write_refuses_a_foreign_folder_and_replaces_its_own(tmp_path, split_key):
    layout = _small_checkout(tmp_path / "src", split_key)
    plan = plan_bundle(tmp_path / "src", layout=layout)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    with pytest.raises(SpaceBundleError, match="not a Space bundle written by this command"):
        write_bundle(plan, foreign)
    assert (foreign / "precious.txt").read_text() == "keep me"
    out = write_bundle(plan, tmp_path / "out")
    (out / "stale.txt").write_text("from an earlier export")
    write_bundle(plan, out)
    assert not (out / "stale.txt").exists() and (out / "app" / "main.py").is_file()
    with pytest.raises(SpaceBundleError, match="holds the files it would copy"):
        write_bundle(plan_bundle(out, layout=layout), out)  # exporting a bundle into itself
    clone = tmp_path / "space-clone"  # a clone of a pushed Space carries the bundle's .gitattributes
    write_bundle(plan, clone)
    (clone / ".git").mkdir()
    with pytest.raises(SpaceBundleError, match="is a git clone"):
        write_bundle(plan, clone)
    assert (clone / ".git").is_dir()


def test_a_shipped_checkpoint_without_its_features_in_the_cache_is_refused(tmp_path, split_key):
    layout = _small_checkout(tmp_path / "src", split_key)
    (tmp_path / "src" / "ckpt" / "cache" / "features-mine.npz").unlink()
    with pytest.raises(SpaceBundleError, match="--build-cache"):
        plan_bundle(tmp_path / "src", layout=layout)


def test_missing_front_matter_and_unknown_sdk_are_errors_in_words(tmp_path, split_key):
    layout = _small_checkout(tmp_path / "src", split_key)
    with pytest.raises(SpaceBundleError, match="unknown Space SDK"):
        plan_bundle(tmp_path / "src", layout=layout, sdk="streamlit")
    readme = (tmp_path / "src" / "README.md").read_text()
    for broken, message in ((readme.replace("6.31.0", "6.0.0"), "must equal the gradio pin"),
                            (readme.replace("app/main.py", "app/missing.py"), "is not a file of the bundle"),
                            (readme.replace("sdk: gradio", "sdk: streamlit"), "it must say gradio"),
                            ("# no front matter\n", "YAML front matter")):
        (tmp_path / "src" / "README.md").write_text(broken)
        with pytest.raises(SpaceBundleError, match=message):
            plan_bundle(tmp_path / "src", layout=layout)
    (tmp_path / "src" / "ckpt" / "m.safetensors").unlink()
    with pytest.raises(SpaceBundleError, match="m.safetensors is missing"):
        plan_bundle(tmp_path / "src", layout=layout)


# ----------------------------------------------------------------------------- the push, against a mocked HfApi
class RecordingHfApi:
    """Stands in for ``huggingface_hub.HfApi``: records the calls, uploads nothing."""

    instances: list["RecordingHfApi"] = []

    def __init__(self, token=None, **_):
        self.token, self.calls = token, []
        RecordingHfApi.instances.append(self)

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))

    def upload_file(self, **kwargs):
        self.calls.append(("upload_file", kwargs["repo_id"], kwargs))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs["repo_id"], kwargs))


def test_push_uploads_the_folder_as_a_space_with_its_allow_list(tmp_path, split_key):
    from huggingface_hub.utils import filter_repo_objects

    layout = _small_checkout(tmp_path / "src", split_key)
    plan = plan_bundle(tmp_path / "src", layout=layout)
    out = write_bundle(plan, tmp_path / "out")
    # what running the app inside the bundle leaves behind is never uploaded
    for junk in ("app/__pycache__/main.cpython-311.pyc", "cache/strips/a.png", "tmp/gradio/upload.mp4"):
        (out / junk).parent.mkdir(parents=True, exist_ok=True)
        (out / junk).write_bytes(b"junk")
    api = RecordingHfApi()
    url = push_bundle(out, "someone/lsmrl-explorer", plan, token="hf_test", api=api)
    assert url == "https://huggingface.co/spaces/someone/lsmrl-explorer"
    assert [(name, repo) for name, repo, _ in api.calls] == [
        ("create_repo", "someone/lsmrl-explorer"), ("upload_file", "someone/lsmrl-explorer"),
        ("upload_folder", "someone/lsmrl-explorer")]
    (_, _, create_kwargs), (_, _, attributes_kwargs), (_, _, upload_kwargs) = api.calls
    # the bundle's .gitattributes lands first, so the Space routes every binary to LFS when the folder arrives
    assert Path(attributes_kwargs["path_or_fileobj"]) == out / ".gitattributes"
    assert attributes_kwargs["path_in_repo"] == ".gitattributes" and attributes_kwargs["repo_type"] == "space"
    assert create_kwargs["repo_type"] == "space" and create_kwargs["space_sdk"] == "gradio"
    assert create_kwargs["exist_ok"] is True
    assert upload_kwargs["repo_type"] == "space" and Path(upload_kwargs["folder_path"]) == out
    assert upload_kwargs["allow_patterns"] == plan.allow_patterns()
    assert upload_kwargs["ignore_patterns"] == list(IGNORE_PATTERNS) and upload_kwargs["delete_patterns"] is None
    # huggingface_hub's own filter, applied to the folder as it is now, selects exactly the bundle
    selected = filter_repo_objects(bundle_files(out), allow_patterns=upload_kwargs["allow_patterns"],
                                   ignore_patterns=upload_kwargs["ignore_patterns"])
    assert sorted(selected) == sorted(f.path for f in plan.files)
    pruned = RecordingHfApi()
    push_bundle(out, "someone/lsmrl-explorer", plan, token="hf_test", api=pruned, prune=True)
    assert pruned.calls[-1][2]["delete_patterns"] == ["*"]
    # a file added to a shipped folder after the export (it could be an uncovered binary) stops the push
    for added in ("ckpt/cache/features-extra.npz", "app/extra.bin"):
        (out / added).write_bytes(b"\0added")
        refused = RecordingHfApi()
        with pytest.raises(SpaceBundleError, match=f"not the bundle as exported \\(added: {added}\\)"):
            push_bundle(out, "someone/lsmrl-explorer", plan, token="hf_test", api=refused)
        assert refused.calls == []
        (out / added).unlink()
    (out / "app" / "main.py").write_text("print('edited after the export')\n")
    with pytest.raises(SpaceBundleError, match="changed: app/main.py"):
        push_bundle(out, "someone/lsmrl-explorer", plan, token="hf_test", api=RecordingHfApi())


def test_push_refuses_without_a_token_or_a_repo_name_and_calls_nothing(tmp_path, monkeypatch, split_key):
    import huggingface_hub.constants

    layout = _small_checkout(tmp_path / "src", split_key)
    plan = plan_bundle(tmp_path / "src", layout=layout)
    out = write_bundle(plan, tmp_path / "out")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.delenv("HF_OIDC_RESOURCE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    api = RecordingHfApi()
    with pytest.raises(SpaceBundleError, match="no Hugging Face token: set HF_TOKEN"):
        push_bundle(out, "someone/space", plan, api=api)
    with pytest.raises(SpaceBundleError, match="OWNER/NAME"):
        push_bundle(out, "just-a-name", plan, token="hf_x", api=api)
    assert api.calls == []
    # the app's HF_HUB_OFFLINE=1 would make the real client refuse: said before anything is sent
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(SpaceBundleError, match="HF_HUB_OFFLINE=0"):
        push_bundle(out, "someone/space", plan, token="hf_x")


@needs_demo
def test_the_command_pushes_with_the_token_from_hf_token(tmp_path, monkeypatch, capsys):
    import huggingface_hub
    import huggingface_hub.constants

    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingHfApi)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    RecordingHfApi.instances.clear()
    out = tmp_path / "bundle"
    assert space_main(["export", "--out", str(out), "--push", "someone/lsmrl-explorer"]) == 0
    (api,) = RecordingHfApi.instances
    assert api.token == "hf_from_env"
    upload = api.calls[-1][2]
    assert upload["repo_type"] == "space" and Path(upload["folder_path"]) == out.resolve()
    assert upload["token"] == "hf_from_env"
    assert "pushed: https://huggingface.co/spaces/someone/lsmrl-explorer" in capsys.readouterr().out


# ----------------------------------------------------------------------------- the app, inside the bundle
def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_app_runs_from_the_bundle_folder_and_answers_retrieve(exported, tmp_path):
    import urllib.request

    _, folder = exported
    # (bytecode on: the bundle's __pycache__ folders show which code the app process imported)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "LSMRL_CACHE_DIR", "GRADIO_TEMP_DIR", "PYTHONDONTWRITEBYTECODE")}
    env.update(GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", LSMRL_CACHE_DIR=str(tmp_path / "cache"),
               GRADIO_TEMP_DIR=str(tmp_path / "gradio"))
    # lsmrl is not installed anywhere else on this interpreter's path: the app can only run the bundle's code
    elsewhere = subprocess.run([sys.executable, "-c", "import importlib.util as u; print(u.find_spec('lsmrl'))"],
                               cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert elsewhere == "None", elsewhere
    port = _free_port()
    log = open(tmp_path / "app.log", "w")
    process = subprocess.Popen([sys.executable, "app/main.py", "--port", str(port)], cwd=folder, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 600
        while True:
            assert process.poll() is None, (tmp_path / "app.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    assert response.status == 200 and b"gradio" in response.read().lower()
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "app.log").read_text()[-3000:]
                time.sleep(1)
        from gradio_client import Client

        examples = json.loads((folder / "assets/cache/examples/examples.json").read_text())
        query = next(e for e in examples if e["modality"] == "infrared" and "tid" in e)
        ranked, summary, _, strips = Client(url, verbose=False).predict(
            query["tid"], "infrared_to_visible", 5, api_name="/retrieve")
        assert ranked["query"]["pid"] == query["pid"] and ranked["query"]["modality"] == "infrared"
        assert [item["rank"] for item in ranked["items"]] == [1, 2, 3, 4, 5]
        assert {item["modality"] for item in ranked["items"]} == {"visible"}
        similarities = [item["similarity"] for item in ranked["items"]]
        assert similarities == sorted(similarities, reverse=True) and len(strips) == 5
        assert query["tid"] in summary
        assert (folder / "lsmrl" / "analysis" / "__pycache__").is_dir()  # the app process imported the bundle's
        # the bundle's shipped cache served the features: nothing was extracted beyond what it holds
        # (an extraction would write files of the same names but other bytes: np.savez stamps the time)
        def digests(paths):
            return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}

        shipped = digests((folder / "checkpoints" / "cache").glob("features-*.npz"))
        used = digests((tmp_path / "cache").rglob("features-*.npz"))
        assert used == shipped
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


# ----------------------------------------------------------------------------- this repository
def _tracked_files() -> list[str]:
    try:
        listing = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [f for f in listing.stdout.split("\0") if f and (ROOT / f).is_file()]


def test_the_repository_keeps_plain_git_objects_under_10_mib():
    files = _tracked_files()
    attributes = subprocess.run(["git", "check-attr", "--stdin", "-z", "filter", "diff"], cwd=ROOT,
                                input="\0".join(files) + "\0", capture_output=True, text=True, check=True).stdout
    fields = attributes.split("\0")[:-1]
    values = {(fields[i], fields[i + 1]): fields[i + 2] for i in range(0, len(fields), 3)}
    assert not [f for f in files if values[(f, "filter")] == "lfs"]  # a clone with git-lfs sees no stray pointers
    binaries = [f for f in files if git_is_binary(ROOT / f)]
    assert binaries and all(values[(f, "diff")] == "unset" for f in binaries), \
        [f for f in binaries if values[(f, "diff")] != "unset"][:5]
    too_big = [f for f in files if (ROOT / f).stat().st_size >= 10 * 2**20]
    assert not too_big


def test_the_command_checks_the_push_before_writing(tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_OIDC_RESOURCE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    out = tmp_path / "bundle"
    assert space_main(["export", "--out", str(out), "--push", "no-owner"]) == 1
    assert space_main(["export", "--out", str(out), "--push", "someone/space"]) == 1
    assert space_main(["export", "--out", str(out), "--dry-run", "--push", "someone/space"]) == 1
    assert space_main(["export", "--out", str(out), "--prune"]) == 1
    errors = capsys.readouterr().err
    assert "give the Space as OWNER/NAME" in errors and errors.count("no Hugging Face token") == 2
    assert "--prune and --private apply to a push" in errors
    assert not out.exists()
