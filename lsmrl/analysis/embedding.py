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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lsmrl.analysis.cache import AnalysisCache, CacheKey
from lsmrl.analysis.modality_gap import STAGE_LABELS, l2_normalise

#: Bump when the layout computation changes (part of the cache key).
UMAP_VERSION = "umap-2"


MODALITY_COLOURS = {"visible": "#e4572e", "infrared": "#3a6ea5"}


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


def _hover(meta: Mapping[str, Sequence], rows: Iterable[int]) -> list[str]:
    return [f"{meta['tid'][i]}<br>identity {meta['pid'][i]}<br>camera {meta['camid'][i]}<br>{meta['modality'][i]}"
            for i in rows]


def umap_figure(coords: Any, meta: Mapping[str, Sequence], stage: str, highlight_query: int | None = None,
                highlight_matches: Iterable[int] = (), match_correct: Sequence[bool] | None = None,
                webgl_above: int = 3000, colour_by: str = "modality"):
    """Scatter of a stage's 2-D layout.

    ``colour_by="modality"`` (default): colour = modality, traces "visible" and
    "infrared". ``colour_by="identity"``: colour = identity (a cycled palette),
    marker = modality (circle visible, diamond infrared); the identities of the
    query and of its matches get a trace and a legend entry each ("id 205
    (query)"), every other point is in the trace "other identities" (100
    identities cannot each have a legend entry one could read).
    ``coords``: (N, 2) of ``stage``, or the dict from :func:`umap_layouts`.
    ``meta``: per-point lists (:func:`point_meta`), row i describing ``coords[i]``.
    ``highlight_query``: a *row* of ``coords`` (== the test index when the
    layout covers all of ``dataset.test``) drawn as a large star;
    ``highlight_matches``: rows ringed (green/red by ``match_correct`` if given,
    else black); the highlight traces are named "query" and "top matches".
    """
    import plotly.graph_objects as go

    if colour_by not in ("modality", "identity"):
        raise ValueError(f"colour_by must be 'modality' or 'identity', got {colour_by!r}")
    if isinstance(coords, Mapping):
        coords = coords[stage]
    coords = np.asarray(coords)
    n = len(coords)
    for name, values in meta.items():
        if len(values) != n:
            raise ValueError(f"meta[{name!r}] has {len(values)} entries for {n} points")
    pids = list(meta["pid"])
    scatter = go.Scattergl if n > webgl_above else go.Scatter
    figure = go.Figure()
    matches = [int(i) for i in highlight_matches]

    def customdata(rows):
        return [meta["test_index"][i] for i in rows] if "test_index" in meta else None

    if colour_by == "modality":
        for modality in ("visible", "infrared"):
            rows = [i for i in range(n) if meta["modality"][i] == modality]
            figure.add_trace(scatter(
                x=coords[rows, 0] if rows else [], y=coords[rows, 1] if rows else [], mode="markers", name=modality,
                marker=dict(color=MODALITY_COLOURS[modality], size=8, opacity=0.8, line=dict(width=0.5, color="white")),
                text=_hover(meta, rows), hovertemplate="%{text}<extra></extra>", customdata=customdata(rows)))
        legend_title = "modality"
    else:
        palette = IDENTITY_PALETTE
        colour_of = {pid: palette[i % len(palette)] for i, pid in enumerate(sorted(set(pids)))}
        highlighted: list[int] = []
        for row in ([int(highlight_query)] if highlight_query is not None else []) + matches:
            if pids[row] not in highlighted:
                highlighted.append(pids[row])
        symbol = {"visible": "circle", "infrared": "diamond"}
        rest = [i for i in range(n) if pids[i] not in highlighted]
        figure.add_trace(scatter(
            x=coords[rest, 0] if rest else [], y=coords[rest, 1] if rest else [], mode="markers",
            name="other identities", marker=dict(color=[colour_of[pids[i]] for i in rest], size=7, opacity=0.35,
                                                 symbol=[symbol.get(meta["modality"][i], "circle") for i in rest]),
            text=_hover(meta, rest), hovertemplate="%{text}<extra></extra>", customdata=customdata(rest)))
        query_pid = pids[int(highlight_query)] if highlight_query is not None else None
        for pid in highlighted:
            rows = [i for i in range(n) if pids[i] == pid]
            figure.add_trace(go.Scatter(
                x=coords[rows, 0], y=coords[rows, 1], mode="markers",
                name=f"id {pid}" + (" (query)" if pid == query_pid else ""),
                marker=dict(color=colour_of[pid], size=11, opacity=0.95, line=dict(width=1, color="black"),
                            symbol=[symbol.get(meta["modality"][i], "circle") for i in rows]),
                text=_hover(meta, rows), hovertemplate="%{text}<extra></extra>", customdata=customdata(rows)))
        legend_title = "identity (circle: visible, diamond: infrared)"
    if matches:
        colours = ["black"] * len(matches) if match_correct is None else [
            "#2a9d3f" if ok else "#d62828" for ok in match_correct]
        figure.add_trace(go.Scatter(
            x=coords[matches, 0], y=coords[matches, 1], mode="markers", name="top matches",
            marker=dict(symbol="circle-open", size=18, line=dict(width=2.5), color=colours),
            text=[f"rank {r + 1}<br>" + h for r, h in enumerate(_hover(meta, matches))],
            hovertemplate="%{text}<extra></extra>"))
    if highlight_query is not None:
        q = int(highlight_query)
        figure.add_trace(go.Scatter(
            x=[coords[q, 0]], y=[coords[q, 1]], mode="markers", name="query",
            marker=dict(symbol="star", size=22, color="gold", line=dict(width=1.5, color="black")),
            text=["query<br>" + _hover(meta, [q])[0]], hovertemplate="%{text}<extra></extra>"))
    figure.update_layout(title=f"UMAP: {STAGE_LABELS.get(stage, stage)}", legend_title=legend_title,
                         xaxis=dict(showticklabels=False, title=""), yaxis=dict(showticklabels=False, title=""),
                         template="plotly_white")
    return figure


#: Colours of identities when the UMAP is coloured by identity (plotly's Dark24, cycled).
IDENTITY_PALETTE = ("#2E91E5", "#E15F99", "#1CA71C", "#FB0D0D", "#DA16FF", "#222A2A", "#B68100", "#750D86",
                    "#EB663B", "#511CFB", "#00A08B", "#FB00D1", "#FC0080", "#B2828D", "#6C7C32", "#778AAE",
                    "#862A16", "#A777F1", "#620042", "#1616A7", "#DA60CA", "#6C4516", "#0D2A63", "#AF0038")


__all__ = ["Alignment", "IDENTITY_PALETTE", "UMAPParams", "UMAP_VERSION", "align_procrustes", "exact_cosine_knn",
           "fit_umap",
           "point_meta", "umap_cache_key", "umap_figure", "umap_layouts"]
