"""Process-wide resources of the app, loaded once, and the shipped analysis cache.

* :class:`AppConfig`: which checkpoint(s), data set and cache folder the app serves.
* :class:`Resources`: the one :class:`lsmrl.analysis.Explorer` of the process,
  opened in a background thread at start-up so that the first page is served at
  once; handlers call :meth:`Resources.explorer`, which waits for it (forwarding
  the loading progress to the caller's ``gr.Progress``). The Explorer's methods
  are thread-safe, so every session shares it. Per-session choices (the selected
  query and match) live in ``gr.State`` (:mod:`app.session`), never here.
* The **shipped cache** (``checkpoints/cache/``, committed): the test-split
  features of the demo checkpoints, the per-stage UMAP layouts, the gap table and
  the attribute probes, keyed by the weights' sha256 and the data fingerprint
  (portable across machines). At start the app copies it into its writable cache
  (``cache/`` or ``$LSMRL_CACHE_DIR``) and opens the Explorer there, so a warm
  start reads everything from disk (~3 s) instead of extracting (~140 s on 2
  cores) and fitting UMAP (~30 s). :func:`build_cache` (``python app/main.py
  --build-cache``) rebuilds it, plus the example upload videos in
  ``assets/cache/examples/``.

This module imports neither gradio nor torch at import time.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from lsmrl.space.bundle import HUB_PLAIN_FILE_LIMIT

REPO_ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT_DIR = REPO_ROOT / "checkpoints"
DEFAULT_CHECKPOINT = CHECKPOINT_DIR / "lsmrl-mini-synthvvi.safetensors"
DEFAULT_BASELINE = CHECKPOINT_DIR / "baseline-mini-synthvvi.safetensors"
DEFAULT_DATASET = "synthvvi"
DEFAULT_DATA_ROOT = REPO_ROOT / "assets" / "synthvvi"
SHIPPED_CACHE = CHECKPOINT_DIR / "cache"
EXAMPLES_DIR = REPO_ROOT / "assets" / "cache" / "examples"
ABLATION_JSON = CHECKPOINT_DIR / "ablation.json"
DATASETS = ("synthvvi", "hitsz-vcm", "buptcampus")
#: Every committed file stays under this size (Hugging Face Hub pushes refuse larger files outside LFS).
MAX_COMMITTED_BYTES = HUB_PLAIN_FILE_LIMIT
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


# =========================================================================== configuration
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
            baseline = DEFAULT_BASELINE if _same_file(main, DEFAULT_CHECKPOINT) and DEFAULT_BASELINE.is_file() else None
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
                        "(with Git LFS if you cloned from a Space)." if _same_file(Path(path), DEFAULT_CHECKPOINT)
                        or _same_file(Path(path), DEFAULT_BASELINE) else "")
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


def _same_file(a: Path, b: Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


# =========================================================================== cache seeding
def seed_cache(target: Path, sources: tuple[Path, ...] | list[Path]) -> int:
    """Copy cache files from ``sources`` into ``target`` when missing or of another size; returns the count.

    Cache files are named by a digest of their full key and carry the key, so
    copying them is safe: a file for other weights or data is simply never read.
    """
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    copied = 0
    for source in sources:
        source = Path(source)
        if not source.is_dir() or _same_file(source, target):
            continue
        for path in source.iterdir():
            if not path.is_file() or path.suffix not in (".npz", ".json") or path.name.startswith("."):
                continue
            destination = target / path.name
            if destination.is_file() and destination.stat().st_size == path.stat().st_size:
                continue
            tmp = target / f".{path.name}.{os.getpid()}.tmp"
            shutil.copyfile(path, tmp)
            os.replace(tmp, destination)
            copied += 1
    return copied


# =========================================================================== resources
ProgressFn = Callable[..., Any]


class Resources:
    """The shared :class:`~lsmrl.analysis.Explorer`, opened once (see the module docstring)."""

    def __init__(self, config: AppConfig | None = None, explorer: Any = None, precompute: bool = True):
        self.config = config or AppConfig.resolve()
        self._explorer = explorer
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self._analysis_ready = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._precompute = precompute
        self._progress: tuple[float, str] = (0.0, "waiting to start")
        self.timings: dict[str, float] = {}
        self.analysis_error: str | None = None
        if explorer is not None:
            self._progress = (1.0, "ready")
            self._ready.set()
            self._analysis_ready.set()

    @classmethod
    def from_explorer(cls, explorer: Any, config: AppConfig | None = None) -> "Resources":
        """Resources around an Explorer that is already open (tests, notebooks)."""
        return cls(config, explorer=explorer)

    # ------------------------------------------------------------------ loading
    def start(self) -> "Resources":
        """Open the Explorer in a background thread (idempotent); returns self."""
        with self._lock:
            if self._thread is None and not self._ready.is_set():
                self._thread = threading.Thread(target=self._load, name="lsmrl-explorer-loader", daemon=True)
                self._thread.start()
        return self

    def _report(self, fraction: float, message: str) -> None:
        self._progress = (float(min(max(fraction, 0.0), 1.0)), str(message))

    def _load(self) -> None:
        start = time.perf_counter()
        try:
            from lsmrl.analysis import Explorer

            config = self.config
            problems = config.problems()
            if problems:
                from lsmrl.errors import LSMRLError

                raise LSMRLError("; ".join(problems))
            cache_dir = config.effective_cache_dir
            self._report(0.0, "copying the shipped cache")
            seed_cache(cache_dir, config.seed_caches)
            explorer = Explorer.open(
                config.checkpoint, config.dataset, config.data_root, compare_checkpoint=config.compare_checkpoint,
                baseline_checkpoint=config.baseline_checkpoint, cache_dir=cache_dir, device=config.device,
                progress=self._report, num_frames=config.num_frames, batch_size=config.batch_size,
                numba_cache=True)
            self._explorer = explorer
            self.timings["open"] = time.perf_counter() - start
        except BaseException as error:  # noqa: BLE001 - shown to every request; the server keeps running
            from lsmrl.errors import LSMRLError

            self._error = error
            self._report(1.0, f"failed: {error}")
            if isinstance(error, LSMRLError):  # a user's mistake: its message says what to do
                print(f"error: {error}", file=sys.stderr, flush=True)
            else:
                traceback.print_exc()
            self._ready.set()
            self._analysis_ready.set()
            return
        self._report(1.0, "ready")
        self._ready.set()
        if self._precompute:
            try:
                self.timings.update({f"precompute_{k}": v for k, v in explorer.precompute().items()})
            except Exception as error:  # noqa: BLE001 - the tabs raise it again, in words, when asked
                self.analysis_error = str(error)
                traceback.print_exc()
        self._analysis_ready.set()

    # ------------------------------------------------------------------ access
    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self._error is None

    @property
    def failed(self) -> BaseException | None:
        return self._error

    @property
    def progress(self) -> tuple[float, str]:
        return self._progress

    def explorer(self, progress: ProgressFn | None = None, timeout: float | None = None) -> Any:
        """The Explorer; waits for the loader (reporting to ``progress(fraction, desc=...)``); raises its error."""
        if not self._ready.is_set():
            self.start()
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._ready.wait(0.25):
                if progress is not None:
                    fraction, message = self._progress
                    try:
                        progress(fraction, desc=f"loading the model: {message}")
                    except Exception:  # noqa: BLE001 - a progress bar must never break loading
                        pass
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"the model is still loading ({self._progress[1]}); try again shortly")
        if self._error is not None:
            raise self._error
        return self._explorer

    def default_query(self) -> str | None:
        """The first query of the first direction: the default the API page shows for a query parameter.

        From the open Explorer if it is ready, else from a read of the data set's index (about 0.5 s for
        the demo; no model); None if neither works (the handlers then use their own default)."""
        try:
            if self.ready:
                explorer = self._explorer
                rows = explorer.queries(explorer.directions[0])
                return rows[0]["tid"] if rows else None
            from lsmrl.data.registry import build_dataset

            config = self.config
            if config.data_root is None or not Path(config.data_root).is_dir():
                return None
            dataset = build_dataset(config.dataset, config.data_root)
            for name in ("infrared_to_visible", *dataset.directions):
                if name in dataset.directions and len(dataset.directions[name][0]):
                    tracklet = dataset.test[int(dataset.directions[name][0][0])]
                    return tracklet.tid or None
        except Exception:  # noqa: BLE001 - only a default for the API page
            return None
        return None

    def wait_analysis(self, timeout: float | None = None) -> bool:
        """Wait until the background precomputation (gap table, probes, UMAP) is done."""
        return self._analysis_ready.wait(timeout)

    def status_markdown(self) -> str:
        fraction, message = self._progress
        if self._error is not None:
            return f"**Could not load the model.** {self._error}"
        if not self._ready.is_set():
            return f"Loading the model ({fraction:.0%}): {message}"
        text = f"Serving {self.config.describe()}."
        if not self._analysis_ready.is_set():
            text += " Precomputing the UMAP layouts and gap metrics in the background."
        return text


# =========================================================================== static tables
def ablation_rows(explorer: Any = None) -> tuple[list[dict], str]:
    """The ablation table's rows and a sentence saying where they come from.

    ``checkpoints/ablation.json`` when it exists: a list of rows (or ``{"rows": [...]}``), each ``{"row",
    "label", "metrics": {direction: {rank1, mAP, mINP, ...}}}`` and, for runs over several seeds, ``"seeds":
    [{"seed", "metrics"}, ...]`` (the Model tab shows mean ± sample sd). Without it, one row per loaded
    checkpoint from its JSON sidecar (metrics as trained) or, failing that, as measured now, and the
    sentence says so.
    """
    if ABLATION_JSON.is_file():
        try:
            data = json.loads(ABLATION_JSON.read_text(encoding="utf-8"))
            rows = data.get("rows", []) if isinstance(data, dict) else data
            rows = [r for r in rows if isinstance(r, dict)]
            extra = []
            if isinstance(data, dict):
                for key, label in (("synthvvi_version", "SynthVVI version"), ("data_fingerprint", "data fingerprint")):
                    if data.get(key):
                        extra.append(f"{label} `{data[key]}`")
            return rows, (f"Ablation rows from `{ABLATION_JSON.relative_to(REPO_ROOT).as_posix()}` "
                          f"({len(rows)} rows{'; ' + ', '.join(extra) if extra else ''}); "
                          "several seeds: mean ± sample sd.")
        except (OSError, ValueError, AttributeError) as error:
            return [], f"`{ABLATION_JSON.name}` could not be read ({error}); no ablation rows to show."
    rows = []
    if explorer is not None:
        for role in ("baseline", "main", "compare"):
            try:
                card = explorer.provenance.model_card(role)
            except Exception:  # noqa: BLE001 - that checkpoint is not loaded
                continue
            sidecar = card.get("metrics_sidecar")
            metrics = sidecar if isinstance(sidecar, dict) and any(
                isinstance(v, dict) for v in sidecar.values()) else card.get("metrics_now")
            rows.append({"row": role, "label": Path(card["checkpoint"]).stem, "metrics": metrics or {}})
    return rows, ("`checkpoints/ablation.json` is not in this checkout, so the table lists only the loaded "
                  "checkpoints (their sidecar metrics). `python -m lsmrl ablation ... --seeds 0 1 2` trains every "
                  "row and writes the file (see the README).")


def example_videos() -> list[dict]:
    """The example upload videos that :func:`build_cache` wrote: ``[{path, modality, tid, pid}]``."""
    manifest = EXAMPLES_DIR / "examples.json"
    if not manifest.is_file():
        return []
    try:
        entries = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    out = []
    for entry in entries:
        path = EXAMPLES_DIR / entry.get("file", "")
        if path.is_file():
            out.append(dict(entry, path=str(path)))
    return out


# =========================================================================== per-session state
def new_selection(direction: str = "infrared_to_visible") -> dict:
    """The per-session state (a ``gr.State`` value): see :mod:`app.session`."""
    from app.session import new_session

    return new_session(direction)


# =========================================================================== cache building
def build_cache(config: AppConfig | None = None, out_dir: Path = SHIPPED_CACHE, examples_dir: Path = EXAMPLES_DIR,
                progress: Callable[[float, str], None] | None = None) -> dict:
    """(Re)build the shipped cache for ``config`` (default: the demo) and the example videos.

    Builds in a fresh folder next to ``out_dir``, seeded with whatever the
    existing shipped and user caches hold (so nothing already computed for these
    weights is computed again), opens the Explorer, precomputes the gap table,
    the probes and the UMAP layouts, drops every file that belongs to other
    weights or data, and swaps the folder in. Returns a summary with file sizes.
    """
    from lsmrl.analysis import ANALYSIS_VERSION, Explorer, key_belongs, stored_key
    from lsmrl.errors import LSMRLError

    report = progress or (lambda fraction, message: print(f"[{fraction:4.0%}] {message}", flush=True))
    config = config or AppConfig.resolve()
    problems = config.problems()
    if problems:
        raise LSMRLError("; ".join(problems))
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".cache-build-", dir=out_dir.parent))
    try:
        seed_cache(work, [out_dir, user_cache_dir()])
        start = time.perf_counter()
        explorer = Explorer.open(config.checkpoint, config.dataset, config.data_root,
                                 compare_checkpoint=config.compare_checkpoint,
                                 baseline_checkpoint=config.baseline_checkpoint, cache_dir=work, device=config.device,
                                 progress=lambda f, m: report(0.7 * f, m), num_frames=config.num_frames,
                                 batch_size=config.batch_size, numba_cache=False)
        opened = time.perf_counter() - start
        timings = explorer.precompute(progress=lambda f, m: report(0.7 + 0.25 * f, m))
        keep_sha = {b.sha256 for b in (explorer.main, explorer.compare_bundle, explorer.baseline) if b is not None}
        data_key = explorer.main.key.data_fingerprint
        removed = []
        for path in sorted(work.iterdir()):
            key = stored_key(path) if path.is_file() else None
            if not key_belongs(key, keep_sha, data_key, ANALYSIS_VERSION):
                removed.append(path.name)
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        work.chmod(0o755)  # mkdtemp makes it private; the cache is shipped and read by any user
        for path in work.iterdir():
            path.chmod(0o644)
        report(0.96, "writing the example videos")
        examples = write_examples(explorer, examples_dir)
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}-old-{os.getpid()}")
            os.replace(out_dir, old)
            os.replace(work, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(work, out_dir)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    files = {p.name: p.stat().st_size for p in sorted(out_dir.iterdir()) if p.is_file()}
    files.update({f"examples/{e['file']}": (examples_dir / e["file"]).stat().st_size for e in examples})
    too_big = [name for name, size in files.items() if size >= MAX_COMMITTED_BYTES]
    if too_big:
        raise LSMRLError(f"cache files over 10 MiB (they could not be pushed to a Space): {too_big}")
    report(1.0, "done")
    return {"cache_dir": str(out_dir), "examples_dir": str(examples_dir), "files": files,
            "total_bytes": sum(files.values()), "open_seconds": opened, "precompute_seconds": timings,
            "removed": removed}


def write_examples(explorer: Any, out_dir: Path = EXAMPLES_DIR, per_modality: int = 1) -> list[dict]:
    """Write ``per_modality`` example upload videos of each query modality (16-frame H.264 mp4) + a manifest.

    The tracklets are the easiest queries of each direction (highest AP), so the
    examples show a working retrieval.
    """
    from lsmrl.data.video import write_video

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.mp4"):
        old.unlink()
    entries = []
    for direction in explorer.directions:
        rows = [r for r in explorer.queries(direction) if r["valid"]]
        rows.sort(key=lambda r: (-(r["ap"] or 0.0), r["test_index"]))
        for row in rows[:per_modality]:
            frames = explorer.tracklet_frames(row["test_index"], EXAMPLE_FRAMES)
            name = f"{row['modality']}-{row['tid'].replace('/', '-')}-id{row['pid']}.mp4"
            write_video(frames, out_dir / name, fps=8.0)
            entries.append({"file": name, "modality": row["modality"], "tid": row["tid"], "pid": row["pid"],
                            "camid": row["camid"], "frames": EXAMPLE_FRAMES})
    scene = write_scene_example(explorer, out_dir)
    if scene is not None:
        entries.append(scene)
    (out_dir / "examples.json").write_text(json.dumps(entries, indent=1) + "\n", encoding="utf-8")
    return entries


#: The example scene: two people of the test split walking on a wide cluttered background.
SCENE_SIZE = (224, 480)
SCENE_FRAMES = 16


def write_scene_example(explorer: Any, out_dir: Path = EXAMPLES_DIR, name: str = "scene-two-people.mp4",
                        seed: int = 0) -> dict | None:
    """Write an example *scene* video (``/detect_people`` and ``person`` in ``/retrieve_video``): the two
    easiest visible queries (different identities), pasted on a textured background at the left and the
    right, walking towards each other for :data:`SCENE_FRAMES` frames. Returns its manifest entry (with the
    people's tracklet ids, identities and starting x), or None when the data set has no two such tracklets.
    """
    from lsmrl.data.people import Walker, compose_scene
    from lsmrl.data.video import write_video

    direction = next((d for d in explorer.directions
                      if (explorer.queries(d) or [{}])[0].get("modality") == "visible"), None)
    if direction is None:
        return None
    rows = [r for r in explorer.queries(direction) if r["valid"]]
    rows.sort(key=lambda r: (-(r["ap"] or 0.0), r["test_index"]))
    people = []
    for row in rows:
        if all(row["pid"] != other["pid"] for other in people):
            people.append(row)
        if len(people) == 2:
            break
    if len(people) < 2:
        return None
    height, width = SCENE_SIZE
    clips = [explorer.tracklet_frames(r["test_index"], SCENE_FRAMES) for r in people]
    clip_h, clip_w = clips[0].shape[1:3]
    top = (height - clip_h) // 2
    starts = [(16, top), (width - clip_w - 16, top + 8)]
    walkers = [Walker(clips[0], start=starts[0], velocity=(5, 0)),
               Walker(clips[1], start=starts[1], velocity=(-5, 0))]
    frames, _ = compose_scene(walkers, num_frames=SCENE_FRAMES, size=SCENE_SIZE, seed=seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_video(frames, out_dir / name, fps=8.0)
    return {"file": name, "modality": "visible", "kind": "scene", "frames": SCENE_FRAMES,
            "people": [{"tid": r["tid"], "pid": r["pid"], "start_x": x} for r, (x, _) in zip(people, starts)]}


__all__ = ["ABLATION_JSON", "AppConfig", "DATASETS", "DEFAULT_BASELINE", "DEFAULT_CHECKPOINT", "DEFAULT_DATA_ROOT",
           "EXAMPLES_DIR", "REPO_ROOT", "Resources", "SHIPPED_CACHE", "ablation_rows", "app_temp_dir",
           "build_cache", "configure_environment", "display_path", "example_videos", "new_selection", "seed_cache",
           "user_cache_dir", "write_examples"]
