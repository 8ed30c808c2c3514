"""The Space bundle: exactly the files the app needs, with a ``.gitattributes`` for the Hub.

The Hugging Face Hub refuses any binary file that is not in its large-file
storage (LFS or Xet), whatever its size, and any file over 10 MiB outside it.
This repository keeps its files as plain git objects, so a Space is not pushed
from this repository but from a folder assembled here:

* what the app reads at run time: ``app/`` (without the developer tools
  ``bench.py``, ``loadtest.py``, ``perf.py``), ``lsmrl/``, the committed
  SynthVVI test split, the example clips, the two demo checkpoints with their
  sidecars, ``checkpoints/ablation.json`` and those entries of the shipped
  analysis cache whose key names the shipped checkpoints (a cache of another
  checkpoint would never be read);
* the Space's page: ``README.md`` (its YAML front matter configures the
  Space) and the files it links to, ``LICENSE``;
* ``requirements.txt`` rewritten for a CPU machine (:func:`space_requirements`);
* a ``.gitattributes`` that routes every binary (Git's own test: a NUL byte in
  the first 8,000 bytes) and every file of 10 MiB or more to large-file
  storage (:func:`gitattributes_text`).

:func:`plan_bundle` decides, :func:`write_bundle` copies; ``python -m lsmrl
space export`` is the command (``lsmrl/space/cli.py``).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

from lsmrl.errors import SpaceBundleError

#: Git's binary test reads this many leading bytes (``buffer_is_binary`` in git's xdiff-interface.c).
BINARY_SNIFF_BYTES = 8000
#: The Hub refuses larger files outside large-file storage, text or not.
HUB_PLAIN_FILE_LIMIT = 10 * 1024 * 1024
#: PyTorch's index of CPU-only wheels (``torch==X`` resolves to ``X+cpu`` there: no CUDA libraries).
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: The first line of every ``.gitattributes`` this module writes (how :func:`write_bundle` recognises its own folder).
GITATTRIBUTES_HEADER = "# Written by `python -m lsmrl space export`"
LFS_ATTRIBUTES = "filter=lfs diff=lfs merge=lfs -text"
SDKS = ("gradio", "docker")
#: The Docker Space's port (the Dockerfile's EXPOSE and GRADIO_SERVER_PORT).
DOCKER_APP_PORT = 7860

_NEVER_SHIPPED = ("__pycache__", ".pytest_cache", ".ipynb_checkpoints", ".DS_Store")
_CLEAN_EXTENSION = re.compile(r"^[A-Za-z0-9_-]+$")
_MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)|src=\"([^\"]+)\"")


@dataclass(frozen=True)
class BundleLayout:
    """Where the app's files lie in a source checkout (paths relative to its root).

    ``app/state.py`` names the same checkpoints, split and caches for the app;
    ``tests/test_space_bundle.py`` checks that the two agree.
    """

    trees: tuple[str, ...] = ("app", "lsmrl", "assets/synthvvi", "assets/cache/examples")
    #: Developer tools under ``app/`` that the running app never imports (benchmarks, the load test).
    dev_only: tuple[str, ...] = ("app/bench.py", "app/loadtest.py", "app/perf.py")
    checkpoints: tuple[str, ...] = ("checkpoints/lsmrl-mini-synthvvi.safetensors",
                                    "checkpoints/baseline-mini-synthvvi.safetensors")
    files: tuple[str, ...] = ("LICENSE", "checkpoints/ablation.json")
    shipped_cache: str = "checkpoints/cache"
    readme: str = "README.md"
    requirements: str = "requirements.txt"
    #: ``--sdk docker`` only: the image recipe and what it leaves out of the build context.
    docker_files: tuple[str, ...] = ("Dockerfile", ".dockerignore")


@dataclass(frozen=True)
class BundleFile:
    """One file of the bundle: where it comes from, its size and whether the Hub stores it in LFS."""

    path: str  # relative, POSIX
    size: int
    binary: bool
    source: Path | None = None  # None: written by the export (README, requirements, .gitattributes)
    content: bytes | None = None

    @property
    def needs_lfs(self) -> bool:
        return self.binary or self.size >= HUB_PLAIN_FILE_LIMIT


@dataclass
class BundlePlan:
    """Every file of a bundle, the ``.gitattributes`` patterns, and what was left out (with why)."""

    files: list[BundleFile]
    lfs_patterns: list[str]
    sdk: str
    #: Folders uploaded whole (``folder/*`` in the allow-list); every other file is named on its own.
    upload_folders: tuple[str, ...] = ()
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def storage(self, path: str) -> str:
        """``"lfs"`` when the written ``.gitattributes`` routes ``path`` to large-file storage, else ``"git"``."""
        return "lfs" if any(gitattributes_pattern_matches(p, path) for p in self.lfs_patterns) else "git"

    def uncovered_binaries(self) -> list[str]:
        """Files the Hub would refuse: binary or large, but not routed to large-file storage (empty when sound)."""
        return [f.path for f in self.files if f.needs_lfs and self.storage(f.path) != "lfs"]

    def allow_patterns(self) -> list[str]:
        """The upload's allow-list: each folder of the layout as ``folder/*``, each single file by its path."""
        folders, singles = set(), set()
        for f in self.files:
            top = next((folder for folder in self.upload_folders if f.path.startswith(folder + "/")), None)
            (folders.add(top + "/*") if top else singles.add(f.path))
        return sorted(singles) + sorted(folders)

    def summary(self) -> dict[str, int]:
        lfs = [f for f in self.files if self.storage(f.path) == "lfs"]
        return {"files": len(self.files), "bytes": sum(f.size for f in self.files),
                "lfs_files": len(lfs), "lfs_bytes": sum(f.size for f in lfs)}


# ----------------------------------------------------------------------------- file tests
def is_binary(path: Path) -> bool:
    """Git's rule: a NUL byte among the first 8,000 bytes."""
    with open(path, "rb") as handle:
        return b"\0" in handle.read(BINARY_SNIFF_BYTES)


def gitattributes_pattern_matches(pattern: str, path: str) -> bool:
    """Git's matching for the two pattern forms this module writes.

    ``/dir/file`` is anchored at the bundle root and matches that path only;
    a pattern without a slash (``*.jpg``) matches the file name at any depth.
    """
    if pattern.startswith("/"):
        return path == pattern[1:]
    if "/" in pattern:
        raise ValueError(f"unsupported .gitattributes pattern {pattern!r}")
    return fnmatchcase(PurePosixPath(path).name, pattern)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_key_of(path: Path) -> dict | None:
    """The analysis-cache key stored in a shipped cache file (``.npz``: ``__cache_key__``; ``.json``: ``key``)."""
    try:
        if path.suffix == ".npz":
            import numpy as np

            with np.load(path, allow_pickle=False) as archive:  # reads only the key member
                return json.loads(str(archive["__cache_key__"]))
        if path.suffix == ".json":
            return json.loads(json.loads(path.read_text(encoding="utf-8"))["key"])
    except Exception:  # noqa: BLE001 - whatever cannot be read is not a cache entry (and is not shipped)
        return None
    return None


def cache_checkpoints(key: dict) -> set[str]:
    """Every checkpoint sha256 a cache key depends on (its own, and e.g. ``baseline_sha256`` in ``extra``)."""
    shas = {key.get("checkpoint_sha256")}
    shas |= {value for name, value in key.get("extra", []) if str(name).endswith("_sha256")}
    return {sha for sha in shas if sha}


# ----------------------------------------------------------------------------- rewritten files
def readme_links(readme_text: str) -> list[str]:
    """Relative link targets of a README (Markdown links and ``src=""``), without anchors; no URLs."""
    targets = []
    for match in _MARKDOWN_LINK.finditer(readme_text):
        target = (match.group(1) or match.group(2)).split("#", 1)[0]
        if target and "://" not in target and not target.startswith(("mailto:", "/")):
            targets.append(target[2:] if target.startswith("./") else target)
    return list(dict.fromkeys(targets))


def split_front_matter(readme_text: str) -> tuple[str, str]:
    """``(front matter block without the --- lines, the rest)``; the Space's configuration is that block."""
    if not readme_text.startswith("---\n") or "\n---\n" not in readme_text[4:]:
        raise SpaceBundleError("README.md must start with the Space's YAML front matter between two `---` lines "
                               "(sdk, sdk_version, app_file, ...): see the 'Deploy as a Space' section")
    block, rest = readme_text[4:].split("\n---\n", 1)
    return block, rest


def space_readme(readme_text: str, sdk: str) -> str:
    """The README for the Space: unchanged for ``gradio``; for ``docker``, ``sdk: docker`` and ``app_port``.

    Lines are edited in place (not re-dumped) so the front matter keeps its order, quoting and emoji.
    """
    if sdk not in SDKS:
        raise SpaceBundleError(f"unknown Space SDK {sdk!r}: choose one of {', '.join(SDKS)}")
    block, rest = split_front_matter(readme_text)
    if sdk == "gradio":
        return readme_text
    lines = []
    for line in block.splitlines():
        key = line.split(":", 1)[0].strip()
        if key == "sdk":
            lines += ["sdk: docker", f"app_port: {DOCKER_APP_PORT}"]
        elif key not in ("sdk_version", "app_port"):  # gradio's version is the Dockerfile's business there
            lines.append(line)
    return "---\n" + "\n".join(lines) + "\n---\n" + rest


def space_requirements(requirements_text: str) -> str:
    """The repository's requirements with PyTorch's CPU-only index added.

    pip picks the highest version that matches a pin, and ``2.14.1+cpu`` sorts
    above ``2.14.1``, so ``torch==2.14.1`` resolves to the CPU build on that
    index (no ``nvidia-*`` or ``triton``: about 4 GB less). Where the index
    cannot be reached, pip warns and installs the default build from PyPI: the
    same version, only larger.
    """
    header = ("# The Space's install, written by `python -m lsmrl space export` from the repository's\n"
              "# requirements.txt: PyTorch's CPU-only index is consulted too, so torch and torchvision resolve to\n"
              "# their +cpu builds of the same versions (no CUDA libraries, about 4 GB less).\n"
              f"--extra-index-url {TORCH_CPU_INDEX}\n")
    return header + requirements_text


def gitattributes_text(files: list[BundleFile]) -> tuple[str, list[str]]:
    """``(the .gitattributes text, its LFS patterns)`` for ``files``.

    One ``*.ext`` line per extension whose files all need LFS; binaries that share
    their extension with text files, or have none, are named by anchored path.
    """
    by_extension: dict[str, list[BundleFile]] = {}
    for f in files:
        by_extension.setdefault(PurePosixPath(f.path).suffix[1:], []).append(f)
    patterns = []
    for extension, group in sorted(by_extension.items()):
        needing = [f for f in group if f.needs_lfs]
        if not needing:
            continue
        if extension and _CLEAN_EXTENSION.match(extension) and len(needing) == len(group):
            patterns.append(f"*.{extension}")
            continue
        for f in needing:
            if re.search(r"[\s\"'*?\[\]\\!#]", f.path):
                raise SpaceBundleError(f"{f.path}: a binary file name with spaces, quotes or pattern characters "
                                       "cannot be listed in .gitattributes; rename it")
            patterns.append("/" + f.path)
    lines = [GITATTRIBUTES_HEADER + ": every binary file of this Space (a NUL byte in its first",
             "# 8,000 bytes) and every file of 10 MiB or more is stored in the Hub's large-file storage (LFS/Xet).",
             *(f"{pattern} {LFS_ATTRIBUTES}" for pattern in patterns)]
    return "\n".join(lines) + "\n", patterns


# ----------------------------------------------------------------------------- planning
def _tree_files(root: Path, folder: str) -> list[Path]:
    base = root / folder
    if not base.is_dir():
        raise SpaceBundleError(f"{base} is missing: `space export` runs in a full checkout of the repository")
    return sorted(p for p in base.rglob("*")
                  if p.is_file() and not p.name.endswith(".pyc")
                  and not any(part in _NEVER_SHIPPED for part in p.relative_to(root).parts))


def _source_file(root: Path, relative: str) -> BundleFile:
    path = root / relative
    return BundleFile(relative, path.stat().st_size, is_binary(path), source=path)


def _written_file(relative: str, text: str) -> BundleFile:
    content = text.encode("utf-8")
    return BundleFile(relative, len(content), b"\0" in content[:BINARY_SNIFF_BYTES], content=content)


def plan_bundle(source_root: str | Path, *, sdk: str = "gradio", layout: BundleLayout | None = None) -> BundlePlan:
    """Decide the bundle's files from a source checkout; nothing is written."""
    root = Path(source_root).resolve()
    layout = layout or BundleLayout()
    if sdk not in SDKS:
        raise SpaceBundleError(f"unknown Space SDK {sdk!r}: choose one of {', '.join(SDKS)}")
    for needed in (layout.readme, layout.requirements, *layout.checkpoints, *layout.files):
        if not (root / needed).is_file():
            raise SpaceBundleError(f"{root / needed} is missing: the Space needs it (train the demo with "
                                   "`python -m lsmrl train-demo` if a checkpoint is missing)")
    skipped: list[tuple[str, str]] = []
    chosen: dict[str, BundleFile] = {}

    def add(relative: str) -> None:
        chosen.setdefault(relative, _source_file(root, relative))

    for folder in layout.trees:
        for path in _tree_files(root, folder):
            relative = path.relative_to(root).as_posix()
            if relative in layout.dev_only:
                skipped.append((relative, "developer tool, not imported by the app"))
            else:
                add(relative)
    shipped_shas = set()
    for checkpoint in layout.checkpoints:
        add(checkpoint)
        sidecar = str(PurePosixPath(checkpoint).with_suffix(".json"))
        if (root / sidecar).is_file():
            add(sidecar)
        shipped_shas.add(sha256_of(root / checkpoint))
    for relative in layout.files:
        add(relative)
    cache_root = root / layout.shipped_cache
    for path in sorted(cache_root.iterdir()) if cache_root.is_dir() else []:
        relative = path.relative_to(root).as_posix()
        if not path.is_file():
            skipped.append((relative + "/", "not a cache entry"))
            continue
        key = cache_key_of(path)
        if key is None:
            skipped.append((relative, "not an analysis-cache file (no readable key)"))
        elif not cache_checkpoints(key) <= shipped_shas:
            skipped.append((relative, "cache of a checkpoint that is not shipped"))
        else:
            add(relative)

    readme_text = (root / layout.readme).read_text(encoding="utf-8")
    for target in readme_links(readme_text):
        if (root / target).is_file() and not target.startswith(".."):
            add(target)
        elif (root / target).exists():
            skipped.append((target, "README link to a folder (not shipped)"))
    chosen[layout.readme] = _written_file(layout.readme, space_readme(readme_text, sdk))
    chosen[layout.requirements] = _written_file(
        layout.requirements, space_requirements((root / layout.requirements).read_text(encoding="utf-8")))
    if sdk == "docker":
        for relative in layout.docker_files:
            add(relative)

    files = sorted(chosen.values(), key=lambda f: f.path)
    attributes, patterns = gitattributes_text(files)
    files.append(_written_file(".gitattributes", attributes))
    plan = BundlePlan(files=sorted(files, key=lambda f: f.path), lfs_patterns=patterns, sdk=sdk,
                      upload_folders=(*layout.trees, layout.shipped_cache), skipped=skipped)
    if plan.uncovered_binaries():  # gitattributes_text covers each by construction; this guards a future edit
        raise SpaceBundleError(f"binary files not routed to LFS: {plan.uncovered_binaries()[:5]}")
    return plan


# ----------------------------------------------------------------------------- writing
def write_bundle(plan: BundlePlan, out_dir: str | Path) -> Path:
    """Write ``plan`` into ``out_dir``, which must be empty, absent, or a bundle this module wrote before."""
    out = Path(out_dir).resolve()
    if out.exists():
        if not out.is_dir():
            raise SpaceBundleError(f"--out {out} is a file; give a folder")
        marker = out / ".gitattributes"
        ours = marker.is_file() and marker.read_text(encoding="utf-8", errors="replace").startswith(
            GITATTRIBUTES_HEADER)
        if any(out.iterdir()) and not ours:
            raise SpaceBundleError(f"--out {out} is not empty and is not a Space bundle written by this command; "
                                   "choose a new folder (nothing was changed)")
        if any(p.source is not None and _inside(p.source, out) for p in plan.files):
            raise SpaceBundleError(f"--out {out} lies inside what it would copy; choose a folder outside it")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for f in plan.files:
        target = out / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if f.source is not None:
            shutil.copyfile(f.source, target)
        else:
            target.write_bytes(f.content or b"")
    return out


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder)
        return True
    except ValueError:
        return False


def format_plan(plan: BundlePlan) -> str:
    """The dry run's listing: one line per file (storage, size, path), then what was left out, then totals."""
    lines = [f"{'storage':7}  {'size':>9}  path"]
    for f in plan.files:
        lines.append(f"{plan.storage(f.path).upper():7}  {_human(f.size):>9}  {f.path}")
    for path, reason in plan.skipped:
        lines.append(f"{'skipped':7}  {'':>9}  {path}  ({reason})")
    s = plan.summary()
    lines.append(f"{s['files']} files, {_human(s['bytes'])}: {s['lfs_files']} in large-file storage "
                 f"({_human(s['lfs_bytes'])}), {s['files'] - s['lfs_files']} as plain git objects "
                 f"({_human(s['bytes'] - s['lfs_bytes'])}); Space SDK: {plan.sdk}")
    return "\n".join(lines)


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"
