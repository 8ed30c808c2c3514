"""The Space bundle: exactly the files the app needs, with a ``.gitattributes`` for the Hub.

The Hugging Face Hub refuses any binary file that is not in its large-file
storage (LFS or Xet), whatever its size, and any file over 10 MiB outside it.
This repository keeps its files as plain git objects, so a Space is not pushed
from this repository but from a folder assembled here:

* what the app reads at run time: ``app/``, ``lsmrl/``, the committed
  SynthVVI test split, the example clips, the two demo checkpoints with their
  sidecars, ``checkpoints/ablation.json`` and those entries of the shipped
  analysis cache that an Explorer of these checkpoints on this split reads (the
  app's own rule, :func:`lsmrl.analysis.cache.key_belongs`; other entries would
  never be read);
* the Space's page: ``README.md`` (its YAML front matter configures the
  Space) and the files it links to, ``LICENSE``;
* ``requirements.txt`` rewritten for a CPU machine (:func:`space_requirements`);
* a ``.gitattributes`` that routes every binary (Git's own test: a NUL byte in
  the first 8,000 bytes) and every file of 10 MiB or more to large-file
  storage (:func:`gitattributes_text`).

The checkpoints, the data set and the cache folder are the app's own
(:mod:`app.config`), so nothing is listed twice. :func:`plan_bundle` decides,
:func:`write_bundle` copies; ``python tools/space.py export`` is the command.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

from app import config as app_config
from lsmrl.analysis.cache import key_belongs, stored_key
from lsmrl.analysis.explorer import ANALYSIS_VERSION, data_cache_key
from lsmrl.data.registry import build_dataset
from lsmrl.errors import LSMRLError
from lsmrl.model.checkpoint import file_sha256

#: Git's binary test reads this many leading bytes (``buffer_is_binary`` in git's xdiff-interface.c).
BINARY_SNIFF_BYTES = 8000
#: The Hub refuses larger files outside large-file storage, text or not (the app's committed files stay under it).
HUB_PLAIN_FILE_LIMIT = app_config.HUB_PLAIN_FILE_LIMIT
#: PyTorch's index of CPU-only wheels (``torch==X`` resolves to ``X+cpu`` there: no CUDA libraries, about 4.5 GB
#: less to install, docs/space_install.json).
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: The first line of every ``.gitattributes`` this module writes (how :func:`write_bundle` recognises its own folder).
GITATTRIBUTES_HEADER = "# Written by `python tools/space.py export`"
LFS_ATTRIBUTES = "filter=lfs diff=lfs merge=lfs -text"
SDKS = ("gradio", "docker")
#: The Docker Space's port (the Dockerfile's EXPOSE and GRADIO_SERVER_PORT).
DOCKER_APP_PORT = 7860

_NEVER_SHIPPED = ("__pycache__", ".pytest_cache", ".ipynb_checkpoints", ".DS_Store")
_CLEAN_EXTENSION = re.compile(r"^[A-Za-z0-9_-]+$")
# [text](target) or [text](target "title"), and src="target"
_MARKDOWN_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'(][^)]*)?\)|src=\"([^\"]+)\"")


def _repo_relative(path: Path) -> str:
    return path.resolve().relative_to(app_config.REPO_ROOT).as_posix()


class SpaceBundleError(LSMRLError):
    """The Space bundle cannot be assembled or pushed (names the file or setting, and the fix)."""


@dataclass(frozen=True)
class BundleLayout:
    """Where the app's files lie in a source checkout (paths relative to its root), read from :mod:`app.config`."""

    trees: tuple[str, ...] = ("app", "lsmrl", _repo_relative(app_config.DEFAULT_DATA_ROOT),
                              _repo_relative(app_config.EXAMPLES_DIR))
    #: The data set the app serves by default (its analysis-cache entries must be for this data).
    dataset: str = app_config.DEFAULT_DATASET
    data_root: str = _repo_relative(app_config.DEFAULT_DATA_ROOT)
    checkpoints: tuple[str, ...] = (_repo_relative(app_config.DEFAULT_CHECKPOINT),
                                    _repo_relative(app_config.DEFAULT_BASELINE))
    files: tuple[str, ...] = ("LICENSE", _repo_relative(app_config.ABLATION_JSON),
                              _repo_relative(app_config.DRAWS_EVIDENCE_JSON))
    shipped_cache: str = _repo_relative(app_config.SHIPPED_CACHE)
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


# ----------------------------------------------------------------------------- rewritten files
def readme_links(readme_text: str) -> list[str]:
    """Relative link targets of a README (Markdown links, with or without a title, and ``src=""``).

    Anchors and query strings are dropped and ``%20`` escapes decoded; URLs and absolute paths are left out
    (whether a target lies inside the checkout is :func:`plan_bundle`'s check).
    """
    targets = []
    for match in _MARKDOWN_LINK.finditer(readme_text):
        target = unquote((match.group(1) or match.group(2)).split("#", 1)[0].split("?", 1)[0])
        if target and "://" not in target and not target.startswith(("mailto:", "/")):
            targets.append(target)
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


def check_front_matter(readme_text: str, requirements_text: str, shipped: set[str]) -> None:
    """Refuses a Gradio Space configuration the Hub would build wrongly: ``sdk_version`` other than the pinned
    gradio, an ``app_file`` that is not shipped, no ``python_version``."""
    import yaml

    block, _ = split_front_matter(readme_text)
    try:
        meta = yaml.safe_load(block) or {}
    except yaml.YAMLError as error:
        raise SpaceBundleError(f"README.md's front matter is not valid YAML: {error}") from error
    if meta.get("sdk") != "gradio":
        raise SpaceBundleError(f"README.md's front matter says sdk: {meta.get('sdk')!r}; it must say gradio "
                               "(`--sdk docker` writes the Docker Space's front matter itself)")
    pin = re.search(r"^\s*gradio\s*==\s*([^\s#;]+)", requirements_text, re.IGNORECASE | re.MULTILINE)
    if pin is None or str(meta.get("sdk_version")) != pin.group(1):
        raise SpaceBundleError(f"README.md's sdk_version ({meta.get('sdk_version')}) must equal the gradio pin in "
                               f"requirements.txt ({pin.group(1) if pin else 'none'}): the Hub installs that gradio")
    if meta.get("app_file") not in shipped:
        raise SpaceBundleError(f"README.md's app_file ({meta.get('app_file')}) is not a file of the bundle")
    if not isinstance(meta.get("python_version"), str):
        raise SpaceBundleError("README.md's front matter needs python_version as a quoted string, e.g. \"3.11\" "
                               "(unquoted 3.10 reads as 3.1)")


def space_requirements(requirements_text: str) -> str:
    """The repository's requirements with PyTorch's CPU-only index added (the same pins, a smaller install).

    pip picks the highest version that matches a pin, and ``2.14.1+cpu`` sorts
    above ``2.14.1``, so ``torch==2.14.1`` resolves to the CPU build on that
    index (no ``nvidia-*`` or ``triton``). Where the index
    cannot be reached, pip warns and installs the default build from PyPI: the
    same version, only larger.
    """
    header = ("# The Space's install, written by `python tools/space.py export` from the repository's\n"
              "# requirements.txt: PyTorch's CPU-only index is consulted too, so torch and torchvision resolve to\n"
              "# their +cpu builds of the same versions (no CUDA libraries, about 4.5 GB less).\n"
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
            add(path.relative_to(root).as_posix())
    shipped_shas = set()
    for checkpoint in layout.checkpoints:
        add(checkpoint)
        sidecar = str(PurePosixPath(checkpoint).with_suffix(".json"))
        if (root / sidecar).is_file():
            add(sidecar)
        shipped_shas.add(file_sha256(root / checkpoint))
    for relative in layout.files:
        add(relative)
    _add_shipped_cache(root, layout, shipped_shas, add, skipped)

    readme_text = (root / layout.readme).read_text(encoding="utf-8")
    for target in readme_links(readme_text):
        path = (root / target).resolve()
        if not path.is_relative_to(root):
            skipped.append((target, "README link outside the checkout (not shipped)"))
        elif path.is_file():
            add(path.relative_to(root).as_posix())
        elif path.exists():
            skipped.append((target, "README link to a folder (not shipped)"))
    requirements_text = (root / layout.requirements).read_text(encoding="utf-8")
    check_front_matter(readme_text, requirements_text, set(chosen))
    chosen[layout.readme] = _written_file(layout.readme, space_readme(readme_text, sdk))
    chosen[layout.requirements] = _written_file(layout.requirements, space_requirements(requirements_text))
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


def _add_shipped_cache(root: Path, layout: BundleLayout, shipped_shas: set[str], add, skipped: list) -> None:
    """Add the shipped cache entries an Explorer of the shipped checkpoints on the shipped data reads.

    The rule is the app's own (:func:`lsmrl.analysis.cache.key_belongs`, which ``--build-cache`` applies
    too). Refuses when a shipped checkpoint has no features entry: the Space would extract them at start.
    """
    data_key = data_cache_key(build_dataset(layout.dataset, root / layout.data_root))
    featured = set()
    cache_root = root / layout.shipped_cache
    for path in sorted(cache_root.iterdir()) if cache_root.is_dir() else []:
        relative = path.relative_to(root).as_posix()
        key = stored_key(path) if path.is_file() else None
        if key is None:
            skipped.append((relative, "not an analysis-cache file (no readable key)"))
        elif not key_belongs(key, shipped_shas, data_key, ANALYSIS_VERSION):
            skipped.append((relative, "cache of other checkpoints, data or analysis version (never read)"))
        else:
            add(relative)
            featured |= {key["checkpoint_sha256"]} if key.get("item") == "features" else set()
    if featured != shipped_shas:
        raise SpaceBundleError(f"{cache_root} does not hold the features of every shipped checkpoint for "
                               f"{layout.data_root}, so the Space would extract them at every start: run "
                               "`python app/main.py --build-cache`, then export again")


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
        if (out / ".git").exists():
            raise SpaceBundleError(f"--out {out} is a git clone (of a Space?): the export replaces the whole "
                                   "folder, so give a new folder instead (nothing was changed)")
        if any(out.iterdir()) and not ours:
            raise SpaceBundleError(f"--out {out} is not empty and is not a Space bundle written by this command; "
                                   "choose a new folder (nothing was changed)")
        if any(p.source is not None and _inside(p.source, out) for p in plan.files):
            raise SpaceBundleError(f"--out {out} holds the files it would copy (it is the checkout, or a folder "
                                   "around it); choose a folder outside the checkout")
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
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
