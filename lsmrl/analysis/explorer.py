"""The facade the app uses: one object that holds a model, a data set and every analysis of them.

:meth:`Explorer.open` loads the checkpoint (and optionally a second checkpoint
to compare and the frame-wise CLIP baseline), reads the data set, extracts (or
reads from the cache) every stage of the test split with the protocol's test
sampling, and computes the distance matrices and per-query records of both
directions. Everything else is computed lazily and cached on disk
(:class:`~lsmrl.analysis.cache.AnalysisCache`, keyed by checkpoint sha256, data
fingerprint plus a digest of some frame bytes (:func:`content_digest`), test
frames and sampling, and :data:`ANALYSIS_VERSION`).

The analyses are objects of their own (:mod:`lsmrl.analysis.views`), one per
analysis: ``explorer.uploads``, ``explorer.gap``, ``explorer.diffusion``,
``explorer.failure``, ``explorer.provenance`` and ``explorer.attention``; the
Explorer itself holds the data, the loaded models and the per-query records.

Query arguments (``query``, ``match``) are a tracklet id (``"test/00042"``) or an
index into ``dataset.test``; ``direction`` is ``"infrared_to_visible"`` or
``"visible_to_infrared"``. AP and INP are fractions in [0, 1]; metrics tables
are in percent. "similarity" is the ranking score: the cosine similarity for
the cosine protocol, ``-distance`` for Euclidean ranking (BUPTCampus).

Thread-safety: read-only methods can be called from several threads (Gradio's
workers). Every call that runs the model holds one lock; lazily computed items
(UMAP, gap table, probes) are computed once, under a lock per item.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lsmrl.allocator import tune_cpu_allocator
from lsmrl.analysis.cache import AnalysisCache, CacheKey, configure_numba_cache
from lsmrl.analysis.embedding import UMAPParams
from lsmrl.analysis.failures import QueryOutcome, distance_to_similarity, normalise_records, rank_gallery
from lsmrl.analysis.modality_gap import BASELINE_FEATURE
from lsmrl.analysis.split_queries import SplitQueries
from lsmrl.analysis.views import (
    AttentionAnalysis,
    DiffusionAnalysis,
    FailureAnalysis,
    GapAnalysis,
    Provenance,
    UploadRetrieval,
)
from lsmrl.data.registry import build_dataset
from lsmrl.data.sampling import load_tracklet
from lsmrl.data.tracklet import INFRARED_TO_VISIBLE, VVIDataset
from lsmrl.errors import LSMRLError
from lsmrl.evaluation.protocols import direction_distmats, evaluate_directions, query_records
from lsmrl.model.stages import STAGES

#: Part of every cache key: bump when an analysis changes its output.
ANALYSIS_VERSION = "analysis-1"

#: The stages of one model, in pipeline order.

#: ``progress(fraction in [0, 1], message)``; gradio's ``gr.Progress()`` fits this call.
ProgressFn = Callable[[float, str], Any]


@dataclass(frozen=True)
class ModelBundle:
    """A loaded checkpoint with its test-split features, distances and per-query records."""

    role: str  # "main", "compare" or "baseline"
    path: Path
    model: Any  # lsmrl.model.lsmrl.LSMRL (eval mode)
    meta: dict  # the JSON sidecar
    sha256: str  # of the weights file as read now
    key: CacheKey  # item "features"
    features: dict[str, np.ndarray]  # extract_stages output
    distmats: dict[str, np.ndarray]  # direction -> (num_query, num_gallery)
    records: dict[str, list]  # direction -> [QueryRecord]
    metrics: dict[str, dict]  # evaluate_directions on the current data (percent)
    extract_seconds: float  # 0 when read from the cache


def _noop(fraction: float, message: str) -> None:
    return None


def content_digest(dataset: VVIDataset, samples: int = 16) -> str:
    """A short hash of some of the test split's *content* (the first 64 KiB of the first frame or video of up
    to ``samples`` evenly spaced test tracklets) and of the identity attributes.

    :func:`lsmrl.engine.extract.data_fingerprint` hashes the tracklet lists
    (names, identities, cameras) only; two SynthVVI generations with another
    seed could share them. Cache keys use both.
    """
    digest = hashlib.sha256()
    test = dataset.test
    if test:
        for i in sorted(set(np.linspace(0, len(test) - 1, min(samples, len(test))).astype(int).tolist())):
            path = test[i].frames[0] if test[i].frames else test[i].video
            try:
                with open(path, "rb") as handle:
                    digest.update(handle.read(1 << 16))
            except (OSError, TypeError):
                digest.update(b"unreadable")
    if dataset.attributes:
        digest.update(json.dumps(dataset.attributes, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def data_cache_key(dataset: VVIDataset, fingerprint: str | None = None) -> str:
    """The data part of every analysis-cache key: the tracklet lists' fingerprint, then the content digest."""
    if fingerprint is None:
        # torch loads when a model is used, not at import
        from lsmrl.engine.extract import data_fingerprint

        fingerprint = data_fingerprint(dataset)
    return f"{fingerprint}-{content_digest(dataset)}"


class Explorer(SplitQueries):
    """See the module docstring. Build with :meth:`open`."""

    def __init__(self, dataset: VVIDataset, main: ModelBundle, compare: ModelBundle | None,
                 baseline: ModelBundle | None, cache: AnalysisCache, num_frames: int, sampling: str,
                 device, fingerprint: str, umap_params: UMAPParams = UMAPParams()):
        super().__init__(dataset)
        self.main = main
        self.compare_bundle = compare
        self.baseline = baseline
        self.cache = cache
        self.num_frames = num_frames
        self.sampling = sampling
        self.device = device
        self.fingerprint = fingerprint
        self.umap_params = umap_params
        self.model_lock = threading.RLock()
        self._item_locks: dict[str, threading.Lock] = {}
        self._item_locks_guard = threading.Lock()
        self._memo: dict[str, Any] = {}
        self._pids = np.array([t.pid for t in dataset.test])
        self._camids = np.array([t.camid for t in dataset.test])
        self._outcomes = {role: normalise_records(b.records, dataset) for role, b in self.bundles().items()}
        # the analyses, one object each (lsmrl.analysis.views)
        self.uploads = UploadRetrieval(self)
        self.gap = GapAnalysis(self)
        self.diffusion = DiffusionAnalysis(self)
        self.failure = FailureAnalysis(self)
        self.provenance = Provenance(self)
        self.attention = AttentionAnalysis(self)

    # ================================================================== building
    @classmethod
    def open(cls, checkpoint: str | Path, dataset: str | VVIDataset = "synthvvi", data_root: str | Path | None = None,
             compare_checkpoint: str | Path | None = None, baseline_checkpoint: str | Path | None = None,
             cache_dir: str | Path | None = "cache", device=None, progress: ProgressFn | None = None, *,
             num_frames: int | None = None, batch_size: int = 16, numba_cache: bool = True,
             dataset_options: Mapping[str, Any] | None = None) -> "Explorer":
        """Load everything; see the module docstring.

        ``dataset``: a registered name (with ``data_root``) or a :class:`VVIDataset`.
        ``cache_dir``: None disables the disk cache. ``num_frames``: test frames per
        tracklet (default: the protocol's, ``dataset.test_num_frames``).
        ``numba_cache``: point ``NUMBA_CACHE_DIR`` at ``<cache_dir>/numba`` unless
        it is already set (call before anything imports umap).
        ``progress(fraction, message)`` reports loading and extraction.
        """
        # torch loads when a model is used, not at import
        from lsmrl.device import get_device

        # torch loads when a model is used, not at import
        from lsmrl.engine.extract import data_fingerprint

        tune_cpu_allocator()  # a serving process: reuse freed memory across forwards (see its docstring)
        report = progress or _noop
        if numba_cache and cache_dir is not None:
            configure_numba_cache(Path(cache_dir) / "numba")
        device = get_device(str(device) if device is not None else None)
        report(0.0, "reading the data set")
        if isinstance(dataset, VVIDataset):
            data = dataset
        else:
            if data_root is None:
                raise LSMRLError(f"data_root is required to read the data set {dataset!r}")
            data = build_dataset(dataset, data_root, **dict(dataset_options or {}))
        frames = int(num_frames or data.test_num_frames)
        fingerprint = data_fingerprint(data)
        data_key = data_cache_key(data, fingerprint)
        cache = AnalysisCache(cache_dir)
        roles = [("main", checkpoint)] + [(role, path) for role, path in (
            ("compare", compare_checkpoint), ("baseline", baseline_checkpoint)) if path is not None]
        bundles: dict[str, ModelBundle] = {}
        for number, (role, path) in enumerate(roles):
            lo, hi = number / len(roles), (number + 1) / len(roles)

            def scaled(fraction: float, message: str, lo=lo, hi=hi) -> None:
                report(0.02 + 0.96 * (lo + (hi - lo) * fraction), message)

            bundles[role] = _load_bundle(role, Path(path), data, frames, data_key, cache, device, batch_size,
                                         scaled)
        report(1.0, "ready")
        return cls(data, bundles["main"], bundles.get("compare"), bundles.get("baseline"), cache, frames,
                   data.test_sampling, device, fingerprint)

    # ================================================================== helpers
    def bundles(self) -> dict[str, ModelBundle]:
        out = {"main": self.main}
        if self.compare_bundle is not None:
            out["compare"] = self.compare_bundle
        if self.baseline is not None:
            out["baseline"] = self.baseline
        return out

    def bundle(self, model: str) -> ModelBundle:
        bundles = self.bundles()
        if model not in bundles:
            raise LSMRLError(f"no {model!r} checkpoint is loaded (have: {', '.join(bundles)})")
        return bundles[model]

    def lazy(self, name: str, compute: Callable[[], Any]) -> Any:
        """Compute ``name`` once per Explorer (thread-safe, one lock per item)."""
        if name in self._memo:
            return self._memo[name]
        with self._item_locks_guard:
            lock = self._item_locks.setdefault(name, threading.Lock())
        with lock:
            if name not in self._memo:
                self._memo[name] = compute()
            return self._memo[name]

    def memoised(self, name: str) -> bool:
        """Whether :meth:`lazy` has computed ``name`` already."""
        return name in self._memo


    def _outcome(self, index: int, direction: str, model: str = "main") -> QueryOutcome:
        return self._outcomes[model][direction][self.query_row(index, direction)]

    def outcomes(self, model: str = "main") -> dict[str, list[QueryOutcome]]:
        """``{direction: [QueryOutcome]}`` of ``model`` (in query order)."""
        self.bundle(model)
        return self._outcomes[model]

    @staticmethod
    def _nan_to_none(value: float) -> float | None:
        return None if value is None or np.isnan(value) else float(value)

    def query_dict(self, outcome: QueryOutcome) -> dict:
        row = self.tracklet_row(outcome.query_index)
        row.update(ap=self._nan_to_none(outcome.ap), inp=self._nan_to_none(outcome.inp),
                   first_match_rank=outcome.first_match_rank if outcome.valid else None,
                   num_matches=outcome.num_matches, valid=outcome.valid,
                   rank1_correct=outcome.rank1_correct)
        return row

    # ================================================================== retrieval

    def queries(self, direction: str = INFRARED_TO_VISIBLE, model: str = "main") -> list[dict]:
        """Every query of ``direction``: tid, test_index, pid, camid, modality, ap, inp, first_match_rank, ..."""
        self.check_direction(direction)
        self.bundle(model)
        return [self.query_dict(o) for o in self._outcomes[model][direction]]

    def retrieve(self, query: str | int, direction: str = INFRARED_TO_VISIBLE, top_k: int = 10,
                 model: str = "main") -> dict:
        """The ranked gallery of one query (the protocol's camera rule applied, as the metric counts it).

        Returns ``{"direction", "metric", "model", "query": {...}, "items": [{rank, test_index, tid, pid,
        camid, modality, similarity, distance, is_match}, ...], "ap", "inp", "first_match_rank",
        "num_matches", "first_match", "gallery_size"}``. ``items`` holds the first ``top_k``;
        ``first_match`` is the first true match of the *whole* ranking (an item as in ``items``, or None
        when the gallery has none after the camera rule), so a query whose true match lies past ``top_k``
        can still be explained against it; ``gallery_size`` counts the items ranked.
        """
        bundle = self.bundle(model)
        index = self.test_index(query)
        row = self.query_row(index, direction)
        _, gallery = self.dataset.directions[direction]
        gallery = np.asarray(gallery).reshape(-1)
        distances = bundle.distmats[direction][row]
        q = self.dataset.test[index]
        ranked, is_match = rank_gallery(distances, gallery, self._pids[gallery], self._camids[gallery], q.pid, q.camid,
                                        self.dataset.camera_filter)
        distance_of = dict(zip(gallery.tolist(), np.asarray(distances, dtype=np.float64).tolist()))

        def item_at(position: int) -> dict:
            test_index = int(ranked[position])
            item = self.tracklet_row(test_index)
            d = distance_of[test_index]
            item.update(rank=position + 1, similarity=float(distance_to_similarity(d, self.dataset.metric)),
                        distance=float(d), is_match=bool(is_match[position]))
            return item

        items = [item_at(position) for position in range(min(int(top_k), len(ranked)))]
        matches = np.flatnonzero(is_match)
        outcome = self._outcome(index, direction, model)
        query_row = self.query_dict(outcome)
        return {"direction": direction, "metric": self.dataset.metric, "model": model, "query": query_row,
                "items": items, "ap": query_row["ap"], "inp": query_row["inp"],
                "first_match_rank": query_row["first_match_rank"], "num_matches": outcome.num_matches,
                "first_match": item_at(int(matches[0])) if len(matches) else None, "gallery_size": int(len(ranked))}

    def metrics(self, model: str = "main") -> dict[str, dict]:
        """Rank-1/5/10/20, mAP, mINP (percent) per direction, on the current data and test sampling."""
        return self.bundle(model).metrics

    # ================================================================== modality gap and UMAP
    def stage_features(self) -> dict[str, np.ndarray]:
        """The features of every stage; ``baseline`` is the baseline checkpoint's retrieval feature
        (:data:`~lsmrl.analysis.modality_gap.BASELINE_FEATURE`), the one :meth:`metrics` ranks it with."""
        stages: dict[str, np.ndarray] = {}
        if self.baseline is not None:
            stages["baseline"] = self.baseline.features[BASELINE_FEATURE]
        for stage in STAGES:
            stages[stage] = self.main.features[stage]
        return stages

    @property
    def stages(self) -> list[str]:
        """Stages with features: ``baseline`` (if a baseline is loaded), ``stfl``, ``sd``, ``cmi``, ``embedding``."""
        return list(self.stage_features())

    def cache_key(self, item: str, **extra: Any) -> CacheKey:
        if self.baseline is not None:
            extra["baseline_sha256"] = self.baseline.sha256
        return self.main.key.with_item(item, **extra)

    # ------------------------------------------------------------------ shortcuts used by scripts and tests
    def gap_table(self) -> list[dict]:
        """``self.gap.table()``: one row of gap metrics per stage."""
        return self.gap.table()

    def umap_cached(self) -> bool:
        """``self.gap.cached()``: whether the UMAP layouts are served without fitting."""
        return self.gap.cached()

    # ================================================================== frames and attention
    def tracklet_frames(self, test_index: str | int, num_frames: int | None = None) -> np.ndarray:
        """The tracklet's frames as the model sees them (test sampling): (T, H, W, 3) uint8, original size."""
        index = self.test_index(test_index)
        return load_tracklet(self.dataset.test[index], int(num_frames or self.num_frames), self.sampling)

    # ================================================================== warm-up
    def precompute(self, umap: bool = True, gap: bool = True, probes: bool = True,
                   progress: ProgressFn | None = None) -> dict[str, float]:
        """Compute (or load) the lazy items now, e.g. in a background thread at app start; returns seconds per item."""
        timings = {}
        report = progress or _noop
        for name, enabled, fn in (("gap", gap, self.gap.table), ("probes", probes, self.diffusion.probe_table),
                                  ("umap", umap, lambda: self.gap.layouts(progress))):
            if enabled:
                report(len(timings) / 3, f"computing {name}")
                start = time.perf_counter()
                fn()
                timings[name] = time.perf_counter() - start
        report(1.0, "analysis ready")
        return timings


def _load_bundle(role: str, path: Path, dataset: VVIDataset, num_frames: int, data_key: str,
                 cache: AnalysisCache, device, batch_size: int, progress: Callable[[float, str], None]) -> ModelBundle:
    # torch loads when a model is used, not at import
    from lsmrl.engine.extract import extract_stages

    # torch loads when a model is used, not at import
    from lsmrl.model.checkpoint import file_sha256, load_model

    progress(0.0, f"loading the {role} checkpoint {path.name}")
    model, meta = load_model(path, device)
    sha = file_sha256(path)
    key = CacheKey(sha, data_key, num_frames, dataset.test_sampling, ANALYSIS_VERSION, "features")
    timing = {"seconds": 0.0}

    def extract() -> dict[str, np.ndarray]:
        start = time.perf_counter()
        total = len(dataset.test)
        features = extract_stages(model, dataset.test, num_frames, dataset.test_sampling, batch_size, device,
                                  progress=False,
                                  callback=lambda done, _: progress(0.05 + 0.9 * done / max(total, 1),
                                                                    f"{role}: features {done}/{total} tracklets"))
        timing["seconds"] = time.perf_counter() - start
        return features

    features = cache.get_or_compute(key, extract)
    progress(0.96, f"{role}: ranking both directions")
    distmats = direction_distmats(features["embedding"], dataset, metric=dataset.metric)
    records = query_records(dataset=dataset, distmat=distmats, topk=20)
    metrics = evaluate_directions(dataset=dataset, distmat=distmats)
    progress(1.0, f"{role}: ready")
    return ModelBundle(role, path, model, meta, sha, key, features, distmats, records, metrics, timing["seconds"])


__all__ = ["ANALYSIS_VERSION", "Explorer", "ModelBundle", "content_digest"]
