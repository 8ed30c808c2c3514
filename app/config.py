"""What the app serves and where its files lie: the one place the app and its deployer read them.

* Paths of the embedded demo: the checkpoints, the SynthVVI test split, the
  shipped analysis cache, the example videos, the ablation table.
* :class:`AppConfig`: which checkpoint(s), data set and cache folder one run of
  the app serves (``python app/main.py`` flags fill it).
* The app's writable folders (``$LSMRL_CACHE_DIR``, ``$GRADIO_TEMP_DIR``) and the
  environment defaults it sets before gradio is imported.
* :class:`UploadLimits`: the caps of one uploaded video.
* :data:`HUB_PLAIN_FILE_LIMIT`: the size every committed file stays under, so
  that the Space exporter (``tools/space.py``) can push the checkout.

This module imports neither gradio nor torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lsmrl.data.video import VideoLimits

REPO_ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT_DIR = REPO_ROOT / "checkpoints"
DEFAULT_CHECKPOINT = CHECKPOINT_DIR / "lsmrl-mini-synthvvi.safetensors"
DEFAULT_BASELINE = CHECKPOINT_DIR / "baseline-mini-synthvvi.safetensors"
DEFAULT_DATASET = "synthvvi"
DEFAULT_DATA_ROOT = REPO_ROOT / "assets" / "synthvvi"
SHIPPED_CACHE = CHECKPOINT_DIR / "cache"
EXAMPLES_DIR = REPO_ROOT / "assets" / "cache" / "examples"
ABLATION_JSON = CHECKPOINT_DIR / "ablation.json"
#: The demo's standing across fresh draws (``eval-draws``); the Model tab finds it next to the checkpoint.
DRAWS_EVIDENCE_JSON = CHECKPOINT_DIR / "evidence" / "eval_draws_101-105.json"
DATASETS = ("synthvvi", "hitsz-vcm", "buptcampus")
#: Hugging Face Hub pushes refuse larger files outside large-file storage; every committed file stays under it.
HUB_PLAIN_FILE_LIMIT = 10 * 1024 * 1024
#: Sessions Gradio keeps in memory, least recently used dropped first. Every API call is a session of its own,
#: and each keeps its last outputs (about 150 kB measured in the soak: 2,000 sessions grew the server by about
#: 300 MB); a browser user's session stays as long as it is used more recently than this many others.
SESSION_CAPACITY = 400
#: Frames of the example upload videos (16, the size the latency target is stated for).
EXAMPLE_FRAMES = 16


def user_cache_dir() -> Path:
    """The app's writable cache (``$LSMRL_CACHE_DIR``, else ``<repo>/cache``, which git ignores)."""
    return Path(os.environ.get("LSMRL_CACHE_DIR") or REPO_ROOT / "cache")


def strip_cache_dir() -> Path:
    """Rendered tracklet strips (PNG files the app serves; in ``launch(allowed_paths=...)``)."""
    return user_cache_dir() / "strips"


def app_temp_dir() -> Path:
    """Where uploads and exported files go (``$GRADIO_TEMP_DIR``, else ``<repo>/tmp/gradio``)."""
    return Path(os.environ.get("GRADIO_TEMP_DIR") or REPO_ROOT / "tmp" / "gradio")


def configure_environment() -> None:
    """Environment defaults of the app (offline, no analytics, uploads in the app's own folder).

    Call before gradio is imported (gradio reads ``GRADIO_TEMP_DIR`` and the
    analytics switch at import) and before umap is (``NUMBA_CACHE_DIR``).
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("GRADIO_TEMP_DIR", str(app_temp_dir()))
    os.environ.setdefault("NUMBA_CACHE_DIR", str(user_cache_dir() / "numba"))


@dataclass(frozen=True)
class AppConfig:
    """What the app serves. :meth:`resolve` fills the defaults of the embedded demo."""

    checkpoint: Path = DEFAULT_CHECKPOINT
    compare_checkpoint: Path | None = None
    baseline_checkpoint: Path | None = None
    dataset: str = DEFAULT_DATASET
    data_root: Path | None = DEFAULT_DATA_ROOT
    cache_dir: Path | None = None  # None: user_cache_dir()
    seed_caches: tuple[Path, ...] = (SHIPPED_CACHE,)  # copied into cache_dir before opening
    num_frames: int | None = None  # None: the protocol's
    device: str | None = None
    batch_size: int = 16

    @classmethod
    def resolve(cls, checkpoint: str | Path | None = None, compare_checkpoint: str | Path | None = None,
                baseline_checkpoint: str | Path | None = None, dataset: str | None = None,
                data_root: str | Path | None = None, cache_dir: str | Path | None = None,
                num_frames: int | None = None, device: str | None = None) -> "AppConfig":
        """Defaults: the demo checkpoint on the embedded SynthVVI test split, with the frame-wise CLIP
        baseline when the demo checkpoint is used (``baseline_checkpoint="none"`` turns it off)."""
        main = Path(checkpoint) if checkpoint else DEFAULT_CHECKPOINT
        if baseline_checkpoint is None:
            baseline = DEFAULT_BASELINE if same_file(main, DEFAULT_CHECKPOINT) and DEFAULT_BASELINE.is_file() else None
        elif str(baseline_checkpoint).lower() in ("", "none"):
            baseline = None
        else:
            baseline = Path(baseline_checkpoint)
        name = dataset or DEFAULT_DATASET
        if data_root is not None:
            root = Path(data_root)
        elif name == DEFAULT_DATASET:
            root = DEFAULT_DATA_ROOT
        else:
            root = None
        return cls(checkpoint=main, compare_checkpoint=Path(compare_checkpoint) if compare_checkpoint else None,
                   baseline_checkpoint=baseline, dataset=name, data_root=root,
                   cache_dir=Path(cache_dir) if cache_dir else None, num_frames=num_frames, device=device)

    @property
    def effective_cache_dir(self) -> Path:
        return self.cache_dir or user_cache_dir()

    def problems(self) -> list[str]:
        """What is missing, in words a user understands (empty when everything is there)."""
        out = []
        for label, path in (("checkpoint", self.checkpoint), ("compare checkpoint", self.compare_checkpoint),
                            ("baseline checkpoint", self.baseline_checkpoint)):
            if path is None:
                continue
            if not Path(path).is_file():
                hint = (" The demo checkpoints are committed with the repository: check out the full repo "
                        "(with Git LFS if you cloned from a Space)." if same_file(Path(path), DEFAULT_CHECKPOINT)
                        or same_file(Path(path), DEFAULT_BASELINE) else "")
                out.append(f"the {label} {path} does not exist.{hint}")
        if self.dataset not in DATASETS:
            out.append(f"unknown data set {self.dataset!r}; choose one of {', '.join(DATASETS)}")
        if self.data_root is None:
            out.append(f"--data-root is required for the data set {self.dataset!r}")
        elif not Path(self.data_root).is_dir():
            out.append(f"the data root {self.data_root} is not a folder")
        return out

    def describe(self) -> str:
        parts = [f"checkpoint `{Path(self.checkpoint).name}`"]
        if self.baseline_checkpoint:
            parts.append(f"baseline `{Path(self.baseline_checkpoint).name}`")
        if self.compare_checkpoint:
            parts.append(f"compare `{Path(self.compare_checkpoint).name}`")
        parts.append(f"data `{self.dataset}` (`{display_path(self.data_root)}`)")
        return ", ".join(parts)


def display_path(path: str | Path | None) -> str:
    """A path as the page may show it: relative to the repository when inside it, else its last part only
    (the page never shows where things are on the server)."""
    if path is None:
        return ""
    path = Path(path)
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except (ValueError, OSError):
        return path.name


def same_file(a: Path, b: Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


@dataclass(frozen=True)
class UploadLimits:
    """Caps for one uploaded video (also ``launch(max_file_size=...)`` for the bytes)."""

    max_bytes: int = 50 * 1024 * 1024
    max_frames: int = 1000
    max_width: int = 1920
    max_height: int = 1080
    max_duration_s: float = 120.0
    timeout_s: float = 20.0

    @property
    def max_file_size(self) -> int:
        """The value for ``launch(max_file_size=...)``: the exact byte count (a "<n>mb" string would round a
        limit under 1 MiB down to 0)."""
        return int(self.max_bytes)

    def video_limits(self) -> VideoLimits:
        return VideoLimits(max_bytes=self.max_bytes, max_frames=self.max_frames,
                           max_pixels=self.max_width * self.max_height,
                           timeout_s=self.timeout_s)


DEFAULT_LIMITS = UploadLimits()
