"""The app's process-wide resources: the one Explorer, opened once, and the tables read beside it.

* :class:`Resources`: the one :class:`lsmrl.analysis.Explorer` of the process,
  opened in a background thread at start-up so that the first page is served at
  once; handlers call :meth:`Resources.explorer`, which waits for it (forwarding
  the loading progress to the caller's ``gr.Progress``). The Explorer's methods
  are thread-safe, so every session shares it. Per-session choices (the selected
  query and match) live in ``gr.State`` (:mod:`app.session`), never here.
* :func:`seed_cache`: at start the app copies the shipped analysis cache
  (``checkpoints/cache/``, committed, keyed by the weights' sha256 and the data
  fingerprint) into its writable cache, so a warm start reads everything from
  disk (~3 s) instead of extracting (~140 s on 2 cores) and fitting UMAP (~30 s).
* :func:`ablation_rows`, :func:`example_videos`: the static tables of the Model tab and the examples
  (each labelled by :func:`example_label`).

The library (and with it torch) is imported in the loader thread, not at import
time: the page is served while torch loads (about 2 s of the start on 2 cores).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from app.config import ABLATION_JSON, EXAMPLES_DIR, REPO_ROOT, AppConfig, same_file
from lsmrl.analysis.explorer import Explorer
from lsmrl.analysis.split_queries import first_query
from lsmrl.data.registry import build_dataset
from lsmrl.errors import LSMRLError

if TYPE_CHECKING:  # the real import runs in the loader thread (see the module docstring)
    from lsmrl.analysis.explorer import Explorer


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
        if not source.is_dir() or same_file(source, target):
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


ProgressFn = Callable[..., Any]


class Resources:
    """The shared :class:`~lsmrl.analysis.Explorer`, opened once (see the module docstring)."""

    def __init__(self, config: AppConfig | None = None, explorer: Explorer | None = None, precompute: bool = True):
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
    def from_explorer(cls, explorer: Explorer, config: AppConfig | None = None) -> "Resources":
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
            # torch and the model code load here, in the loader thread, while the first page is served
            config = self.config
            problems = config.problems()
            if problems:
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

    def explorer(self, progress: ProgressFn | None = None, timeout: float | None = None) -> Explorer:
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
                return self._explorer.default_query()
            config = self.config
            if config.data_root is None or not Path(config.data_root).is_dir():
                return None
            return first_query(build_dataset(config.dataset, config.data_root))
        except Exception:  # noqa: BLE001 - only a default for the API page
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


def ablation_rows(explorer: Explorer | None = None) -> tuple[list[dict], str]:
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


def example_label(entry: dict) -> str:
    """What an example clip is, in words: a test tracklet (its id, identity and modality) or a composed scene
    (how many people, their identities, on what background); with its number of frames."""
    frames = entry.get("frames")
    length = f", {frames} frames" if frames else ""
    if entry.get("kind") == "scene":
        people = entry.get("people") or []
        who = " and ".join(str(p.get("pid")) for p in people)
        count = f"{len(people)} {'person' if len(people) == 1 else 'people'}"
        return (f"Scene: {count} (identities {who}) walking on a synthetic random-texture background, "
                f"{entry.get('modality', 'visible')}{length}")
    return (f"Test tracklet {entry.get('tid', '?')} (identity {entry.get('pid', '?')}), "
            f"{entry.get('modality', '?')}{length}")


def example_videos() -> list[dict]:
    """The example upload videos that :func:`build_cache` wrote: ``[{path, modality, label, kind, ...}]``; the
    label says what each clip is (:func:`example_label`)."""
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
            out.append(dict(entry, path=str(path), label=entry.get("label") or example_label(entry)))
    return out
