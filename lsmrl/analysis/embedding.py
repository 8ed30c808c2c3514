"""Seeded per-stage UMAP layouts, aligned by orthogonal Procrustes, and their plotly figure (anchors §6, §7.4).

Separate UMAP fits come out arbitrarily rotated and flipped, so two stages
cannot be compared by eye. ``umap.AlignedUMAP`` fixes that at ~10x the cost
(design.md §5b); here every stage is fitted on its own (``random_state=0``,
``metric="cosine"``, ``n_neighbors=15``) and each later stage is then rotated
(or reflected) onto the first one by orthogonal Procrustes, after centering and
scaling both to unit size, and finally put into the first stage's position and
scale. Distances inside a layout are unchanged by the alignment.

``umap`` is imported inside :func:`umap_layouts` only (its import costs ~3-26 s
and its first fit ~15 s of JIT on 2 cores); pass an
:class:`~lsmrl.analysis.cache.AnalysisCache` and a
:class:`~lsmrl.analysis.cache.CacheKey` so a layout is computed once per
checkpoint and data set, then read back in milliseconds.

Per-point metadata (``meta``) is a dict of equal-length lists:
``test_index``, ``tid``, ``pid``, ``camid``, ``modality`` (see :func:`point_meta`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lsmrl.analysis.cache import AnalysisCache, CacheKey
from lsmrl.analysis.modality_gap import STAGE_LABELS, l2_normalise

#: Bump when the layout computation changes (part of the cache key).
UMAP_VERSION = "umap-2"


@dataclass(frozen=True)
class UMAPParams:
    """The UMAP settings (all part of the cache key)."""

    n_neighbors: int = 15
    min_dist: float = 0.1
    metric: str = "cosine"
    random_state: int = 0


@dataclass(frozen=True)
class Alignment:
    """Procrustes alignment of one layout onto a reference: disparities on the standardised layouts."""

    disparity_before: float
    disparity_after: float


def _standardise(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    centre = points.mean(axis=0)
    centred = points - centre
    scale = float(np.linalg.norm(centred))
    return centred / (scale if scale > 0 else 1.0), centre, scale


def align_procrustes(reference: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, Alignment]:
    """Rotate/reflect ``points`` (N, 2) onto ``reference`` (N, 2); returns (aligned points, disparities).

    Both are centred and scaled to unit Frobenius norm; the orthogonal matrix
    ``R`` minimising ``||B R - A||`` (scipy's ``orthogonal_procrustes``) is applied,
    then the result is mapped into the reference's centre and scale. The
    disparities are ``||B - A||^2`` before and ``||B R - A||^2`` after, on the
    standardised layouts (0 = identical up to rotation, reflection, scale, shift).
    """
    from scipy.linalg import orthogonal_procrustes

    reference = np.asarray(reference, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    if reference.shape != points.shape:
        raise ValueError(f"layouts differ in shape: {reference.shape} vs {points.shape}")
    a, centre_a, scale_a = _standardise(reference)
    b, _, _ = _standardise(points)
    rotation, _ = orthogonal_procrustes(b, a)
    aligned = b @ rotation
    result = aligned * scale_a + centre_a
    return result.astype(np.float32), Alignment(float(np.sum((b - a) ** 2)), float(np.sum((aligned - a) ** 2)))


def exact_cosine_knn(x: np.ndarray, k: int, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours by cosine distance (self included, first): (N, k) int64 indices, float32 distances.

    ``x`` must be L2-normalised. Ties are broken by index. Chunked, so memory
    stays O(chunk x N).
    """
    n = len(x)
    indices = np.empty((n, k), dtype=np.int64)
    distances = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, chunk):
        block = np.maximum(1.0 - x[start:start + chunk] @ x.T, 0.0)
        rows = np.arange(block.shape[0])
        block[rows, start + rows] = 0.0  # self first (distance exactly 0)
        part = np.argpartition(block, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (len(block), 1))
        part_d = np.take_along_axis(block, part, axis=1)
        order = np.lexsort((part, part_d), axis=1)
        indices[start:start + chunk] = np.take_along_axis(part, order, axis=1)
        distances[start:start + chunk] = np.take_along_axis(part_d, order, axis=1)
    return indices, distances


def fit_umap(features: Any, params: UMAPParams = UMAPParams()) -> np.ndarray:
    """One seeded 2-D UMAP of L2-normalised ``features`` (N, D) -> (N, 2) float32.

    ``n_neighbors`` is capped at N - 1 for tiny sets. ``random_state`` makes the
    fit deterministic (and single-threaded, as umap-learn enforces). For the
    cosine metric the exact k-nearest-neighbour graph is computed here in numpy
    and handed to UMAP (``precomputed_knn``): exact at any N, and it skips
    pynndescent's numba compilation, which is most of the first fit's JIT
    (measured: ~5 s instead of ~16-25 s cold on 2 loaded cores).
    """
    x = l2_normalise(features)
    if len(x) < 4:
        raise ValueError(f"UMAP needs at least 4 points, got {len(x)}")
    k = min(params.n_neighbors, len(x) - 1)
    options = {}
    if params.metric == "cosine":
        indices, distances = exact_cosine_knn(x, k)
        options["precomputed_knn"] = (indices, distances, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # import-time numba notices, the n_jobs=1 and precomputed_knn notices
        import umap

        reducer = umap.UMAP(n_components=2, n_neighbors=k, min_dist=params.min_dist, metric=params.metric,
                            random_state=params.random_state, **options)
        coords = reducer.fit_transform(x)
    return np.asarray(coords, dtype=np.float32)


def umap_layouts(features_by_stage: Mapping[str, Any], params: UMAPParams = UMAPParams(),
                 cache: AnalysisCache | None = None, key: CacheKey | None = None,
                 progress=None) -> dict[str, np.ndarray]:
    """``{stage: (N, 2) layout}`` for every stage, each later stage Procrustes-aligned onto the first.

    With ``cache`` and ``key`` (the checkpoint/data key of the features; its item
    is replaced), the whole set of layouts is one cached ``.npz``. The result
    also holds ``"<stage>__disparity"`` arrays ``[before, after]`` for the later stages.
    ``progress(fraction, message)`` is called before each fit.
    """
    stages = list(features_by_stage)
    if not stages:
        raise ValueError("no stages to lay out")

    def compute() -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        reference = None
        for number, stage in enumerate(stages):
            if progress is not None:
                progress(number / len(stages), f"UMAP of {STAGE_LABELS.get(stage, stage)}")
            coords = fit_umap(features_by_stage[stage], params)
            if reference is None:
                reference = coords
            else:
                coords, alignment = align_procrustes(reference, coords)
                out[f"{stage}__disparity"] = np.array([alignment.disparity_before, alignment.disparity_after])
            out[stage] = coords
        return out

    if cache is None or key is None:
        return compute()
    return cache.get_or_compute(umap_cache_key(key, stages, params), compute)


def umap_cache_key(key: CacheKey, stages: Sequence[str], params: UMAPParams = UMAPParams()) -> CacheKey:
    """The cache key of :func:`umap_layouts`' result for features keyed by ``key``."""
    return key.with_item("umap", stages=tuple(stages), umap_version=UMAP_VERSION, n_neighbors=params.n_neighbors,
                         min_dist=params.min_dist, metric=params.metric, random_state=params.random_state)


def point_meta(dataset, indices: Sequence[int] | None = None) -> dict[str, list]:
    """Per-point metadata of ``dataset.test`` (all, or ``indices``): test_index, tid, pid, camid, modality."""
    indices = range(len(dataset.test)) if indices is None else indices
    meta: dict[str, list] = {"test_index": [], "tid": [], "pid": [], "camid": [], "modality": []}
    for i in indices:
        t = dataset.test[int(i)]
        meta["test_index"].append(int(i))
        meta["tid"].append(t.tid or str(i))
        meta["pid"].append(int(t.pid))
        meta["camid"].append(int(t.camid))
        meta["modality"].append(t.modality)
    return meta


__all__ = ["Alignment", "UMAPParams", "UMAP_VERSION", "align_procrustes", "exact_cosine_knn",
           "fit_umap",
           "point_meta", "umap_cache_key", "umap_layouts"]
