"""The facade the app uses: one object that holds a model, a data set and every analysis of them.

:meth:`Explorer.open` loads the checkpoint (and optionally a second checkpoint
to compare and the frame-wise CLIP baseline), reads the data set, extracts (or
reads from the cache) every stage of the test split with the protocol's test
sampling, and computes the distance matrices and per-query records of both
directions. Everything else is computed lazily and cached on disk
(:class:`~lsmrl.analysis.cache.AnalysisCache`, keyed by checkpoint sha256, data
fingerprint plus a digest of some frame bytes (:func:`content_digest`), test
frames and sampling, and :data:`ANALYSIS_VERSION`).

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

from lsmrl.analysis.cache import AnalysisCache, CacheKey, configure_numba_cache
from lsmrl.analysis.compare import Comparison, compare_all
from lsmrl.analysis.diffusion import (DiffusionResult, attribute_probe_table, cross_modal_shift,
                                      probe_text_features, prompt_identities, tracklet_diffusion)
from lsmrl.analysis.embedding import UMAPParams, point_meta, umap_cache_key, umap_figure, umap_layouts
from lsmrl.analysis.failures import (FailureStatistics, ImpostorReport, QueryOutcome, distance_to_similarity,
                                     failure_statistics, find_impostors, normalise_records, rank_gallery,
                                     worst_queries)
from lsmrl.analysis.modality_gap import gap_metrics
from lsmrl.data.tracklet import DIRECTIONS, INFRARED_TO_VISIBLE, MODALITIES, VVIDataset
from lsmrl.errors import LSMRLError

#: Part of every cache key: bump when an analysis changes its output.
ANALYSIS_VERSION = "analysis-1"

#: The stages of one model, in pipeline order.
STAGES = ("stfl", "sd", "cmi", "embedding")
# Explorer.attention's methods: lsmrl.analysis.attention.EXPLANATION_METHODS, repeated so that importing the
# explorer does not import torch (tests/test_analysis.py checks the two agree)
EXPLANATION_METHODS = ("gradcam", "hirescam", "occlusion", "rollout")

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


class Explorer:
    """See the module docstring. Build with :meth:`open`."""

    def __init__(self, dataset: VVIDataset, main: ModelBundle, compare: ModelBundle | None,
                 baseline: ModelBundle | None, cache: AnalysisCache, num_frames: int, sampling: str,
                 device, fingerprint: str, umap_params: UMAPParams = UMAPParams()):
        self.dataset = dataset
        self.main = main
        self.compare_bundle = compare
        self.baseline = baseline
        self.cache = cache
        self.num_frames = num_frames
        self.sampling = sampling
        self.device = device
        self.fingerprint = fingerprint
        self.umap_params = umap_params
        self._model_lock = threading.RLock()
        self._item_locks: dict[str, threading.Lock] = {}
        self._item_locks_guard = threading.Lock()
        self._memo: dict[str, Any] = {}
        self._tid_index = {t.tid: i for i, t in enumerate(dataset.test) if t.tid}
        self._pids = np.array([t.pid for t in dataset.test])
        self._camids = np.array([t.camid for t in dataset.test])
        self._query_rows: dict[str, dict[int, int]] = {
            name: {int(q): row for row, q in enumerate(np.asarray(idx[0]).reshape(-1))}
            for name, idx in dataset.directions.items()}
        self._outcomes = {role: normalise_records(b.records, dataset) for role, b in self._bundles().items()}

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
        from lsmrl.allocator import tune_cpu_allocator
        from lsmrl.device import get_device
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
            from lsmrl.data.registry import build_dataset

            data = build_dataset(dataset, data_root, **dict(dataset_options or {}))
        frames = int(num_frames or data.test_num_frames)
        fingerprint = data_fingerprint(data)
        data_key = f"{fingerprint}-{content_digest(data)}"
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
    def _bundles(self) -> dict[str, ModelBundle]:
        out = {"main": self.main}
        if self.compare_bundle is not None:
            out["compare"] = self.compare_bundle
        if self.baseline is not None:
            out["baseline"] = self.baseline
        return out

    def _bundle(self, model: str) -> ModelBundle:
        bundles = self._bundles()
        if model not in bundles:
            raise LSMRLError(f"no {model!r} checkpoint is loaded (have: {', '.join(bundles)})")
        return bundles[model]

    def _lazy(self, name: str, compute: Callable[[], Any]) -> Any:
        """Compute ``name`` once per Explorer (thread-safe, one lock per item)."""
        if name in self._memo:
            return self._memo[name]
        with self._item_locks_guard:
            lock = self._item_locks.setdefault(name, threading.Lock())
        with lock:
            if name not in self._memo:
                self._memo[name] = compute()
            return self._memo[name]

    def _check_direction(self, direction: str) -> str:
        if direction not in self.dataset.directions:
            raise LSMRLError(f"unknown direction {direction!r}; this data set has {sorted(self.dataset.directions)}")
        return direction

    def test_index(self, query: str | int) -> int:
        """A tracklet id or a test index -> the index into ``dataset.test``."""
        if isinstance(query, (int, np.integer)) and not isinstance(query, bool):
            index = int(query)
            if not 0 <= index < len(self.dataset.test):
                raise LSMRLError(f"test index {index} is out of range (0..{len(self.dataset.test) - 1})")
            return index
        if isinstance(query, str):
            if query in self._tid_index:
                return self._tid_index[query]
            if query.strip().isdigit():
                return self.test_index(int(query.strip()))
            raise LSMRLError(f"no test tracklet with id {query!r}")
        raise LSMRLError(f"a query is a tracklet id or a test index, got {type(query).__name__}")

    def _query_row(self, index: int, direction: str) -> int:
        rows = self._query_rows[self._check_direction(direction)]
        if index not in rows:
            t = self.dataset.test[index]
            raise LSMRLError(f"{t.tid or index} ({t.modality}) is not a query of {direction}; "
                             f"pick a query of that direction (see Explorer.queries)")
        return rows[index]

    def _tracklet_row(self, index: int) -> dict:
        t = self.dataset.test[index]
        return {"tid": t.tid or str(index), "test_index": int(index), "pid": int(t.pid), "camid": int(t.camid),
                "modality": t.modality}

    def _outcome(self, index: int, direction: str, model: str = "main") -> QueryOutcome:
        return self._outcomes[model][direction][self._query_row(index, direction)]

    @staticmethod
    def _nan_to_none(value: float) -> float | None:
        return None if value is None or np.isnan(value) else float(value)

    def _query_dict(self, outcome: QueryOutcome) -> dict:
        row = self._tracklet_row(outcome.query_index)
        row.update(ap=self._nan_to_none(outcome.ap), inp=self._nan_to_none(outcome.inp),
                   first_match_rank=outcome.first_match_rank if outcome.valid else None,
                   num_matches=outcome.num_matches, valid=outcome.valid,
                   rank1_correct=outcome.rank1_correct)
        return row

    # ================================================================== retrieval
    @property
    def directions(self) -> list[str]:
        return [d for d in DIRECTIONS if d in self.dataset.directions] + [
            d for d in self.dataset.directions if d not in DIRECTIONS]

    def queries(self, direction: str = INFRARED_TO_VISIBLE, model: str = "main") -> list[dict]:
        """Every query of ``direction``: tid, test_index, pid, camid, modality, ap, inp, first_match_rank, ..."""
        self._check_direction(direction)
        self._bundle(model)
        return [self._query_dict(o) for o in self._outcomes[model][direction]]

    def retrieve(self, query: str | int, direction: str = INFRARED_TO_VISIBLE, top_k: int = 10,
                 model: str = "main") -> dict:
        """The ranked gallery of one query (the protocol's camera rule applied, as the metric counts it).

        Returns ``{"direction", "metric", "model", "query": {...}, "items": [{rank, test_index, tid, pid,
        camid, modality, similarity, distance, is_match}, ...], "ap", "inp", "first_match_rank",
        "num_matches"}``.
        """
        bundle = self._bundle(model)
        index = self.test_index(query)
        row = self._query_row(index, direction)
        _, gallery = self.dataset.directions[direction]
        gallery = np.asarray(gallery).reshape(-1)
        distances = bundle.distmats[direction][row]
        q = self.dataset.test[index]
        ranked, is_match = rank_gallery(distances, gallery, self._pids[gallery], self._camids[gallery], q.pid, q.camid,
                                        self.dataset.camera_filter)
        distance_of = dict(zip(gallery.tolist(), np.asarray(distances, dtype=np.float64).tolist()))
        items = []
        for position in range(min(int(top_k), len(ranked))):
            test_index = int(ranked[position])
            item = self._tracklet_row(test_index)
            d = distance_of[test_index]
            item.update(rank=position + 1, similarity=float(distance_to_similarity(d, self.dataset.metric)),
                        distance=float(d), is_match=bool(is_match[position]))
            items.append(item)
        outcome = self._outcome(index, direction, model)
        query_row = self._query_dict(outcome)
        return {"direction": direction, "metric": self.dataset.metric, "model": model, "query": query_row,
                "items": items, "ap": query_row["ap"], "inp": query_row["inp"],
                "first_match_rank": query_row["first_match_rank"], "num_matches": outcome.num_matches}

    def embed_frames(self, frames_uint8: np.ndarray, modality: str, model: str = "main") -> dict[str, np.ndarray]:
        """Every stage of an uploaded clip ``(T, H, W, 3)`` uint8, with the test transform and sampling."""
        from lsmrl.data.sampling import build_transform, sample_frame_indices

        frames = np.asarray(frames_uint8)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
            raise LSMRLError(f"an uploaded clip must be uint8 frames (T, H, W, 3), got {frames.dtype} {frames.shape}")
        if modality not in MODALITIES:
            raise LSMRLError(f"modality must be one of {MODALITIES}, got {modality!r}")
        bundle = self._bundle(model)
        sampling = self.sampling if self.sampling in ("evenly", "uniform") else "evenly"
        chosen = frames[sample_frame_indices(len(frames), self.num_frames, sampling)]
        clip = build_transform(tuple(bundle.model.config.image_size), train=False)(list(chosen))
        import torch

        with self._model_lock, torch.no_grad():
            bundle.model.eval()
            out = bundle.model(clip[None].to(self.device), [modality])
        return {stage: out[stage][0].float().cpu().numpy() for stage in STAGES}

    def retrieve_features(self, frames_uint8: np.ndarray, modality: str, top_k: int = 10,
                          model: str = "main") -> dict:
        """Rank the gallery of the other modality for an uploaded clip (identity unknown: no AP, no camera rule)."""
        bundle = self._bundle(model)
        stages = self.embed_frames(frames_uint8, modality, model)
        direction = self._direction_for_query_modality(modality)
        _, gallery = self.dataset.directions[direction]
        gallery = np.asarray(gallery).reshape(-1)
        from lsmrl.evaluation.distance import compute_distance

        distances = np.asarray(compute_distance(stages["embedding"][None], bundle.features["embedding"][gallery],
                                                self.dataset.metric))[0]
        order = np.argsort(distances, kind="stable")[: int(top_k)]
        items = []
        for rank, column in enumerate(order, start=1):
            item = self._tracklet_row(int(gallery[column]))
            item.update(rank=rank, distance=float(distances[column]),
                        similarity=float(distance_to_similarity(distances[column], self.dataset.metric)))
            items.append(item)
        return {"direction": direction, "metric": self.dataset.metric, "model": model,
                "query": {"modality": modality, "num_frames_uploaded": int(len(np.asarray(frames_uint8))),
                          "num_frames_used": self.num_frames, "sampling": self.sampling},
                "items": items, "note": "uploaded clip: identity unknown, so no AP and no camera rule"}

    def _direction_for_query_modality(self, modality: str) -> str:
        for name in self.directions:
            queries = np.asarray(self.dataset.directions[name][0]).reshape(-1)
            if len(queries) and self.dataset.test[int(queries[0])].modality == modality:
                return name
        raise LSMRLError(f"this data set has no direction with {modality} queries")

    def metrics(self, model: str = "main") -> dict[str, dict]:
        """Rank-1/5/10/20, mAP, mINP (percent) per direction, on the current data and test sampling."""
        return self._bundle(model).metrics

    # ================================================================== modality gap and UMAP
    def _stage_features(self) -> dict[str, np.ndarray]:
        stages: dict[str, np.ndarray] = {}
        if self.baseline is not None:
            stages["baseline"] = self.baseline.features["stfl"]
        for stage in STAGES:
            stages[stage] = self.main.features[stage]
        return stages

    @property
    def stages(self) -> list[str]:
        """Stages with features: ``baseline`` (if a baseline is loaded), ``stfl``, ``sd``, ``cmi``, ``embedding``."""
        return list(self._stage_features())

    def _key(self, item: str, **extra: Any) -> CacheKey:
        if self.baseline is not None:
            extra["baseline_sha256"] = self.baseline.sha256
        return self.main.key.with_item(item, **extra)

    def gap_table(self) -> list[dict]:
        """One row per stage (see :func:`lsmrl.analysis.modality_gap.gap_metrics`); cached."""
        def compute() -> list[dict]:
            return gap_metrics(self._stage_features(), self.main.features["pids"], self.main.features["modalities"],
                               self.dataset)

        return self._lazy("gap", lambda: self.cache.get_or_compute(self._key("gap_table"), compute))

    def umap_layouts(self, progress: ProgressFn | None = None) -> dict[str, np.ndarray]:
        """All stages' aligned 2-D layouts (cached; the first call may fit UMAP: ~20 s cold on 2 cores)."""
        return self._lazy("umap", lambda: umap_layouts(self._stage_features(), self.umap_params, self.cache,
                                                       self._key("features"), progress))

    def umap_cached(self) -> bool:
        """Whether :meth:`umap` will be served without fitting UMAP (from memory or the disk cache)."""
        return "umap" in self._memo or self.cache.contains(
            umap_cache_key(self._key("features"), self.stages, self.umap_params))

    def umap(self, stage: str) -> tuple[np.ndarray, dict[str, list]]:
        """``(coords (N, 2), meta)`` of ``stage``; row i is ``dataset.test[i]`` (meta: test_index, tid, pid, camid, modality)."""
        if stage not in self.stages:
            raise LSMRLError(f"unknown stage {stage!r}; have {self.stages}")
        return self.umap_layouts()[stage], point_meta(self.dataset)

    def umap_figure(self, stage: str, query: str | int | None = None, direction: str = INFRARED_TO_VISIBLE,
                    top_k: int = 5):
        """The stage's UMAP with the query as a star and its top-k matches ringed (green = true match)."""
        coords, meta = self.umap(stage)
        highlight, matches, correct = None, [], None
        if query is not None:
            result = self.retrieve(query, direction, top_k)
            highlight = result["query"]["test_index"]
            matches = [item["test_index"] for item in result["items"]]
            correct = [item["is_match"] for item in result["items"]]
        return umap_figure(coords, meta, stage, highlight, matches, correct)

    # ================================================================== semantic diffusion
    def prompt_features(self) -> np.ndarray:
        """(C, D) identity prompt features of the main model (computed once)."""
        def compute() -> np.ndarray:
            import torch

            model = self.main.model
            if model.prompt_learner is None:
                raise LSMRLError("this checkpoint has no identity prompts (num_classes = 0)")
            with self._model_lock, torch.no_grad():
                return model.prompt_features().float().cpu().numpy()

        return self._lazy("prompts", compute)

    def prompt_pids(self) -> list[int] | None:
        """The training pid of each prompt label (None if unknown: a test-only data set and no ``train_pids``
        in the checkpoint sidecar's ``data`` section)."""
        return prompt_identities(len(self.prompt_features()), self.dataset, self.main.meta)

    def identity_attributes(self) -> dict[int, dict]:
        """``{pid: attributes}`` of the data set, plus the sidecar's ``data.train_attributes`` if the trainer
        stored them (a test-only data set has no attributes of the training identities behind the prompts)."""
        stored = ((self.main.meta.get("data") or {}).get("train_attributes") or {})
        merged = {int(pid): attrs for pid, attrs in stored.items()}
        merged.update(self.dataset.attributes or {})
        return merged

    def probe_table(self) -> list:
        """SynthVVI attribute probes before/after SD over the test set (cached); [] without attributes."""
        if not self.dataset.attributes:
            return []

        def compute_rows() -> list[dict]:
            from dataclasses import asdict

            with self._model_lock:
                text = probe_text_features(self.main.model)
            return [asdict(r) for r in attribute_probe_table(self.main.features, text, self.dataset.attributes)]

        def load():
            from lsmrl.analysis.diffusion import ProbeRow

            rows = self.cache.get_or_compute(self._key("attribute_probes"), compute_rows)
            return [ProbeRow(**r) for r in rows]

        return self._lazy("probes", load)

    def diffusion(self, query: str | int, top_k: int = 5) -> DiffusionResult:
        """SD's effect on one tracklet (any test tracklet), the test-set shift, and the probe table."""
        index = self.test_index(query)
        report = tracklet_diffusion(self.main.features, index, self.prompt_features(), self.prompt_pids(),
                                    self.identity_attributes(), self.dataset.test[index], top_k)
        shift = self._lazy("cross_modal_shift", lambda: cross_modal_shift(self.main.features))
        return DiffusionResult(report, shift, self.probe_table())

    # ================================================================== failures
    def failures(self, direction: str = INFRARED_TO_VISIBLE, sort_by: str = "ap", limit: int | None = None,
                 model: str = "main") -> list[dict]:
        """Valid queries sorted worst first by ``sort_by`` ("ap" or "inp"); rows as in :meth:`queries`."""
        self._check_direction(direction)
        rows = [self._query_dict(o) for o in worst_queries(self._outcomes[model][direction], direction, sort_by)]
        return rows[:limit] if limit is not None else rows

    def failure_statistics(self, direction: str = INFRARED_TO_VISIBLE, model: str = "main") -> FailureStatistics:
        """Failure rate by camera pair and by attribute, and the positive/negative similarity histogram."""
        bundle = self._bundle(model)
        self._check_direction(direction)
        return self._lazy(f"failstats/{model}/{direction}", lambda: failure_statistics(
            self._outcomes[model][direction], self.dataset, direction, bundle.distmats[direction]))

    def impostors(self, query: str | int, direction: str = INFRARED_TO_VISIBLE, max_items: int = 20,
                  model: str = "main") -> ImpostorReport:
        """Gallery items ranked above the query's first true match, with per-stage similarities and margins."""
        bundle = self._bundle(model)
        index = self.test_index(query)
        row = self._query_row(index, direction)
        _, gallery = self.dataset.directions[direction]
        stages = {s: bundle.features[s] for s in STAGES}
        if self.baseline is not None and model == "main":
            stages = {"baseline": self.baseline.features["stfl"], **stages}
        return find_impostors(index, bundle.distmats[direction][row], np.asarray(gallery).reshape(-1), self.dataset,
                              direction=direction, features_by_stage=stages, attributes=self.dataset.attributes,
                              max_items=max_items)

    # ================================================================== comparison
    def compare(self, other: str = "compare") -> dict[str, Comparison] | None:
        """Main model (A) vs ``other`` (B: "compare" or "baseline") per direction; None if not loaded."""
        bundle = self._bundles().get(other)
        if bundle is None or other == "main":
            return None
        label_a = self.main.path.stem
        label_b = bundle.path.stem if bundle.path.stem != label_a else f"{bundle.path.stem} ({other})"
        return self._lazy(f"compare/{other}", lambda: compare_all(
            self.main.records, bundle.records, self.dataset, label_a=label_a, label_b=label_b))

    # ================================================================== provenance
    def model_card(self, model: str = "main") -> dict:
        """The checkpoint's sidecar (config, training, data, metrics) plus what was checked now, and warnings."""
        bundle = self._bundle(model)
        meta = bundle.meta
        warnings_: list[str] = []
        recorded = meta.get("weights_sha256")
        if recorded and recorded != bundle.sha256:
            warnings_.append(f"the weights' sha256 ({bundle.sha256[:12]}) differs from the one in the sidecar "
                             f"({recorded[:12]}): the two files may come from different runs")
        data = meta.get("data") or {}
        recorded_fp = data.get("fingerprint")
        if recorded_fp and recorded_fp != self.fingerprint:
            warnings_.append(f"the sidecar metrics were computed on other data (fingerprint {recorded_fp} vs "
                             f"{self.fingerprint} now); the metrics below are recomputed on the current data")
        config = meta.get("model_config") or {}
        if config.get("num_frames") and int(config["num_frames"]) != self.num_frames:
            warnings_.append(f"tested with T={self.num_frames} frames (the protocol's); the model config says "
                             f"T={config['num_frames']}")
        if config.get("test_sampling") and config["test_sampling"] != self.sampling:
            warnings_.append(f"test sampling is {self.sampling!r} (the protocol's); the model config says "
                             f"{config['test_sampling']!r}")
        training = dict(meta.get("training") or {})
        return {
            "role": bundle.role,
            "checkpoint": str(bundle.path),
            "weights_sha256": bundle.sha256,
            "sidecar_sha256": recorded,
            "sha256_matches": recorded == bundle.sha256 if recorded else None,
            "model_config": config,
            "is_baseline": bool(getattr(bundle.model.config, "is_baseline", False)),
            "training": training,
            "data": data,
            "metrics_sidecar": meta.get("metrics"),
            "metrics_now": bundle.metrics,
            "dataset": self.dataset.name,
            "data_fingerprint": self.fingerprint,
            "test_num_frames": self.num_frames,
            "test_sampling": self.sampling,
            "camera_filter": self.dataset.camera_filter,
            "metric": self.dataset.metric,
            "reranking": False,
            "notes": list(self.dataset.notes),
            "warnings": warnings_,
        }

    # ================================================================== frames and attention
    def tracklet_frames(self, test_index: str | int, num_frames: int | None = None) -> np.ndarray:
        """The tracklet's frames as the model sees them (test sampling): (T, H, W, 3) uint8, original size."""
        from lsmrl.data.sampling import load_tracklet

        index = self.test_index(test_index)
        return load_tracklet(self.dataset.test[index], int(num_frames or self.num_frames), self.sampling)

    def tracklet_tensor(self, test_index: str | int, num_frames: int | None = None, model: str = "main"):
        """The same frames through the test transform: a (T, 3, H, W) float tensor on the CPU."""
        from lsmrl.data.sampling import build_transform

        frames = self.tracklet_frames(test_index, num_frames)
        return build_transform(tuple(self._bundle(model).model.config.image_size), train=False)(list(frames))

    def attention(self, query: str | int, match: str | int | None = None, target: str = "match",
                  method: str = "gradcam", direction: str = INFRARED_TO_VISIBLE, layer: int = -1,
                  stage: str | None = None, both: bool = True, model: str = "main") -> dict:
        """Per-frame maps of the query (and the match) from :mod:`lsmrl.analysis.attention`.

        ``target="match"``: Grad-CAM of the similarity to ``match``'s embedding
        (default match: the query's top-1 in ``direction``); with ``both`` the
        match's maps toward the query are computed too. ``target="prompt"``:
        Grad-CAM of the similarity to an identity prompt (``match`` = a prompt
        label; default: the one SD attends to most). ``method``: one of
        :data:`EXPLANATION_METHODS`: ``"gradcam"``, ``"hirescam"`` (Grad-CAM with
        HiResCAM's token-wise weighting), ``"occlusion"`` (the fall of the same
        target when one patch is hidden; gradient-free, ``T * grid`` forward
        passes) or ``"rollout"`` (attention rollout, target-free). Returns ``{"query", "match", "prompt",
        "query_frames", "query_maps", "query_overlay", "match_frames", "match_maps",
        "match_overlay"}`` (maps are :class:`lsmrl.analysis.attention.AttentionMaps`;
        frames and overlays are (T, H, W, 3) uint8 at the frames' own size, the maps
        upsampled from the model's input size; ``match`` is None for prompts, ``prompt`` None for matches).
        """
        import torch

        from lsmrl.analysis import attention as att

        if target not in ("match", "prompt"):
            raise LSMRLError(f"target must be 'match' or 'prompt', got {target!r}")
        if method not in EXPLANATION_METHODS:
            raise LSMRLError(f"method must be one of {', '.join(EXPLANATION_METHODS)}, got {method!r}")
        bundle = self._bundle(model)
        net = bundle.model
        q = self.test_index(query)
        out: dict[str, Any] = {"query": self._tracklet_row(q), "match": None, "prompt": None, "method": method,
                               "target": target}
        m = None
        query_target = match_target = None
        if target == "match":
            m = self.test_index(match) if match is not None else self.retrieve(q, direction, 1, model)["items"][0][
                "test_index"]
            out["match"] = self._tracklet_row(m)
            emb_stage = stage or "embedding"
            query_target = att.EmbeddingSimilarityTarget(torch.from_numpy(bundle.features[emb_stage][m]),
                                                         f"similarity to {out['match']['tid']}")
            match_target = att.EmbeddingSimilarityTarget(torch.from_numpy(bundle.features[emb_stage][q]),
                                                         f"similarity to {out['query']['tid']}")
        else:
            prompts = self.prompt_features()
            if match is None:
                attention = bundle.features.get("sd_attention")
                scores = attention[q] if attention is not None else prompts @ bundle.features["stfl"][q]
                label = int(np.argmax(scores))
            else:
                label = int(match)
            if not 0 <= label < len(prompts):
                raise LSMRLError(f"prompt label {label} out of range (0..{len(prompts) - 1})")
            pids = self.prompt_pids()
            out["prompt"] = {"prompt_index": label, "pid": pids[label] if pids else None}
            query_target = att.PromptTarget(torch.from_numpy(prompts[label]),
                                            f"similarity to prompt {label}" + (f" (id {pids[label]})" if pids else ""))

        def explain(index: int, tgt) -> tuple[np.ndarray, Any, np.ndarray]:
            from lsmrl.data.sampling import build_transform

            frames_uint8 = self.tracklet_frames(index)
            tensor = build_transform(tuple(net.config.image_size), train=False)(list(frames_uint8))
            modality = self.dataset.test[index].modality
            with self._model_lock:
                maps = att.explain(net, tensor, modality, tgt, method, stage=stage, layer=layer)
            # overlays at the frames' own resolution (the maps are upsampled), not at the model's input size
            return frames_uint8, maps, att.overlay(frames_uint8, maps.maps)

        out["query_frames"], out["query_maps"], out["query_overlay"] = explain(q, query_target)
        out["match_frames"] = out["match_maps"] = out["match_overlay"] = None
        if m is not None and both:
            out["match_frames"], out["match_maps"], out["match_overlay"] = explain(m, match_target)
        return out

    # ================================================================== warm-up
    def precompute(self, umap: bool = True, gap: bool = True, probes: bool = True,
                   progress: ProgressFn | None = None) -> dict[str, float]:
        """Compute (or load) the lazy items now, e.g. in a background thread at app start; returns seconds per item."""
        timings = {}
        report = progress or _noop
        for name, enabled, fn in (("gap", gap, self.gap_table), ("probes", probes, self.probe_table),
                                  ("umap", umap, lambda: self.umap_layouts(progress))):
            if enabled:
                report(len(timings) / 3, f"computing {name}")
                start = time.perf_counter()
                fn()
                timings[name] = time.perf_counter() - start
        report(1.0, "analysis ready")
        return timings


def _load_bundle(role: str, path: Path, dataset: VVIDataset, num_frames: int, data_key: str,
                 cache: AnalysisCache, device, batch_size: int, progress: Callable[[float, str], None]) -> ModelBundle:
    from lsmrl.engine.extract import extract_stages
    from lsmrl.evaluation.protocols import direction_distmats, evaluate_directions, query_records
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


__all__ = ["ANALYSIS_VERSION", "Explorer", "ModelBundle", "STAGES", "content_digest"]
