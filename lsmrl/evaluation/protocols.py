"""The two retrieval directions of a VVI-ReID data set, evaluated from one feature matrix.

A :class:`~lsmrl.data.tracklet.VVIDataset` describes its protocol completely:

- ``dataset.test``: every test tracklet (pid, camid, modality);
- ``dataset.directions[name] = (query_indices, gallery_indices)``, indices into
  ``dataset.test``; the names are ``"infrared_to_visible"`` and
  ``"visible_to_infrared"``;
- ``dataset.camera_filter``: True for HITSZ-VCM (gallery items with the query's
  identity and camera are removed), False for BUPTCampus.

So the features of all test tracklets are extracted **once** (one row per
``dataset.test`` entry) and both directions are ranked from them. For HITSZ-VCM
the two directions are the same two sets with their roles swapped (MITML's
official loader; VLD evaluates the reverse direction on the transposed
matrix), and :func:`direction_distmats` reuses the transposed matrix then.

Metrics are reported in percent: Rank-1/5/10/20, mAP and mINP (see
:func:`lsmrl.evaluation.rank.evaluate_rank` for the exact protocol).

torch is optional here: features may be a numpy array or a torch tensor.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lsmrl.data.tracklet import DIRECTIONS, INFRARED_TO_VISIBLE, VISIBLE_TO_INFRARED, VVIDataset
from lsmrl.evaluation.distance import compute_distance
from lsmrl.evaluation.rank import _as_numpy, evaluate_rank

CMC_RANKS = (1, 5, 10, 20)
DIRECTION_LABELS = {INFRARED_TO_VISIBLE: "IR->VIS", VISIBLE_TO_INFRARED: "VIS->IR",
                    "infrared_to_infrared": "IR->IR", "visible_to_visible": "VIS->VIS"}


def _ordered_directions(dataset: VVIDataset) -> list[str]:
    """The data set's directions, infrared-to-visible first, then any others."""
    known = [name for name in DIRECTIONS if name in dataset.directions]
    return known + [name for name in dataset.directions if name not in DIRECTIONS]


def _direction_indices(dataset: VVIDataset, name: str) -> tuple[np.ndarray, np.ndarray]:
    query_idx, gallery_idx = (np.asarray(i, dtype=np.int64).reshape(-1) for i in dataset.directions[name])
    num_test = len(dataset.test)
    for role, idx in (("query", query_idx), ("gallery", gallery_idx)):
        if idx.size == 0:
            raise ValueError(f"{dataset.name}: direction {name!r} has an empty {role} set")
        if idx.min() < 0 or idx.max() >= num_test:
            raise ValueError(
                f"{dataset.name}: direction {name!r} has {role} indices outside dataset.test (0..{num_test - 1})"
            )
    return query_idx, gallery_idx


def _labels(dataset: VVIDataset) -> tuple[np.ndarray, np.ndarray]:
    pids = np.asarray([t.pid for t in dataset.test])
    camids = np.asarray([t.camid for t in dataset.test])
    return pids, camids


def direction_distmats(features: Any, dataset: VVIDataset, metric: str = "cosine") -> dict[str, np.ndarray]:
    """One (num_query, num_gallery) distance matrix per direction, from one feature matrix.

    ``features`` has one row per ``dataset.test`` tracklet (numpy or torch).
    When a direction's query and gallery are another direction's gallery and
    query, the other matrix is reused transposed instead of recomputed.
    """
    if not hasattr(features, "shape"):
        features = np.asarray(features)
    num_rows = features.shape[0]
    if num_rows != len(dataset.test):
        raise ValueError(
            f"features have {num_rows} rows but {dataset.name} has {len(dataset.test)} test tracklets: "
            "extract one feature per dataset.test entry, in order"
        )
    distmats: dict[str, np.ndarray] = {}
    computed: dict[tuple[bytes, bytes], str] = {}
    for name in _ordered_directions(dataset):
        query_idx, gallery_idx = _direction_indices(dataset, name)
        key = (query_idx.tobytes(), gallery_idx.tobytes())
        swapped = computed.get((key[1], key[0]))
        if swapped is not None:
            distmats[name] = distmats[swapped].T
            continue
        query_features, gallery_features = _take_rows(features, query_idx), _take_rows(features, gallery_idx)
        distmats[name] = _as_numpy(compute_distance(query_features, gallery_features, metric), "distmat")
        computed[key] = name
    return distmats


def _take_rows(features: Any, idx: np.ndarray) -> Any:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(features, torch.Tensor):
        return features[torch.as_tensor(idx, device=features.device)]
    return features[idx]


def _resolve_distmats(
    features: Any, dataset: VVIDataset, metric: str, distmat: Any
) -> dict[str, np.ndarray]:
    """Per-direction matrices from features, from a square test x test matrix, or as given."""
    if (features is None) == (distmat is None):
        raise ValueError("pass exactly one of features (one row per test tracklet) or distmat")
    if features is not None:
        return direction_distmats(features, dataset, metric)
    if isinstance(distmat, Mapping):
        result = {}
        for name in _ordered_directions(dataset):
            if name not in distmat:
                raise ValueError(f"distmat has no matrix for direction {name!r} of {dataset.name}")
            query_idx, gallery_idx = _direction_indices(dataset, name)
            matrix = _as_numpy(distmat[name], f"distmat[{name!r}]")
            if matrix.shape != (query_idx.size, gallery_idx.size):
                raise ValueError(
                    f"distmat[{name!r}] has shape {matrix.shape}, expected ({query_idx.size}, {gallery_idx.size})"
                )
            result[name] = matrix
        return result
    square = _as_numpy(distmat, "distmat")
    num_test = len(dataset.test)
    if square.shape != (num_test, num_test):
        raise ValueError(
            f"distmat must be ({num_test}, {num_test}) over all test tracklets, or a dict of "
            f"per-direction matrices; got shape {square.shape}"
        )
    result = {}
    for name in _ordered_directions(dataset):
        query_idx, gallery_idx = _direction_indices(dataset, name)
        result[name] = square[np.ix_(query_idx, gallery_idx)]
    return result


def _evaluate_one(dataset: VVIDataset, name: str, matrix: np.ndarray, pids, camids, topk: int = 0) -> dict:
    query_idx, gallery_idx = _direction_indices(dataset, name)
    return evaluate_rank(
        matrix,
        pids[query_idx],
        pids[gallery_idx],
        camids[query_idx],
        camids[gallery_idx],
        max_rank=max(CMC_RANKS),
        remove_same_camera=dataset.camera_filter,
        topk=topk,
    )


def evaluate_directions(
    features: Any = None,
    dataset: VVIDataset | None = None,
    metric: str = "cosine",
    *,
    distmat: Any = None,
) -> dict[str, dict[str, float | int]]:
    """Rank-1/5/10/20, mAP and mINP (percent) for every direction of ``dataset``.

    Give either ``features`` (one row per ``dataset.test`` tracklet, numpy or
    torch; distances by ``metric``: "cosine" or "euclidean") or ``distmat``:
    a (num_test, num_test) matrix over all test tracklets, or a dict
    ``{direction: (num_query, num_gallery) matrix}`` (e.g. after re-ranking).
    The camera rule is ``dataset.camera_filter``.

    Returns ``{direction: {"rank1", "rank5", "rank10", "rank20", "mAP", "mINP",
    "num_query", "num_gallery", "num_skipped"}}``, infrared-to-visible first.
    A direction where no query has a true match raises ``ValueError``.
    """
    if dataset is None:
        raise ValueError("dataset is required")
    distmats = _resolve_distmats(features, dataset, metric, distmat)
    pids, camids = _labels(dataset)
    results = {}
    for name, matrix in distmats.items():
        results[name] = _summary(_evaluate_one(dataset, name, matrix, pids, camids), matrix.shape)
    return results


def _summary(ranked: dict, shape: tuple[int, int]) -> dict[str, float | int]:
    summary: dict[str, float | int] = {f"rank{k}": 100.0 * float(ranked["cmc"][k - 1]) for k in CMC_RANKS}
    summary["mAP"] = 100.0 * ranked["mAP"]
    summary["mINP"] = 100.0 * ranked["mINP"]
    summary["num_query"] = int(shape[0])
    summary["num_gallery"] = int(shape[1])
    summary["num_skipped"] = int(ranked["num_skipped"])
    return summary


#: The within-modality diagnostic: its name -> the modality whose tracklets are both query and gallery.
WITHIN_MODALITY = {"infrared_to_infrared": "infrared", "visible_to_visible": "visible"}


def within_modality_metrics(features: Any, dataset: VVIDataset, metric: str = "cosine") -> dict[str, dict]:
    """A diagnostic beside the protocol: every test tracklet of one modality queries the other test tracklets of
    the same modality, **other cameras only** (gallery items of the query's identity and camera are removed, so
    the query itself too, whatever the data set's own camera rule). It tells which modality limits cross-modal
    retrieval: a model that cannot match infrared to infrared will not match it to visible.

    Returns ``{"infrared_to_infrared": {...}, "visible_to_visible": {...}}`` with the keys of
    :func:`evaluate_directions` (percent); a modality without two cameras of one identity is left out.
    """
    pids, camids = _labels(dataset)
    modalities = np.array([t.modality for t in dataset.test])
    results = {}
    for name, modality in WITHIN_MODALITY.items():
        idx = np.flatnonzero(modalities == modality)
        if len(idx) < 2:
            continue
        rows = _take_rows(features, idx)
        matrix = _as_numpy(compute_distance(rows, rows, metric), "distmat")
        ranked = evaluate_rank(matrix, pids[idx], pids[idx], camids[idx], camids[idx], max_rank=max(CMC_RANKS),
                               remove_same_camera=True)
        if ranked["num_skipped"] == len(idx):
            continue
        results[name] = _summary(ranked, matrix.shape)
    return results


@dataclass(frozen=True)
class QueryRecord:
    """One query's outcome, for a failure explorer.

    Indices are into ``dataset.test``. The top-k list is the ranking the metric
    counts: after the camera rule, best first, ties by gallery order.
    ``topk_distances`` are the ranking scores (distances: smaller is closer).
    """

    direction: str
    query_index: int
    pid: int
    camid: int
    valid: bool  # False: no true match left in the gallery (skipped by the metric)
    ap: float  # NaN if skipped
    inp: float  # NaN if skipped
    first_match_rank: int  # 1-based; -1 if skipped
    num_matches: int  # true matches in the ranking
    topk_indices: tuple[int, ...]
    topk_distances: tuple[float, ...]
    topk_is_match: tuple[bool, ...]


def query_records(
    features: Any = None,
    dataset: VVIDataset | None = None,
    metric: str = "cosine",
    *,
    distmat: Any = None,
    topk: int = 20,
) -> dict[str, list[QueryRecord]]:
    """Per-query records (AP, INP, first true rank, top-k gallery) for every direction.

    Inputs as in :func:`evaluate_directions`. To compute the distances once for
    both, call :func:`direction_distmats` and pass the result as ``distmat`` to each.
    Lists follow the order of ``dataset.directions[name][0]``; sort them by
    ``ap`` to find the hardest queries (skipped queries have NaN AP).
    """
    if dataset is None:
        raise ValueError("dataset is required")
    if topk < 1:
        raise ValueError(f"topk must be >= 1, got {topk}")
    distmats = _resolve_distmats(features, dataset, metric, distmat)
    pids, camids = _labels(dataset)
    records: dict[str, list[QueryRecord]] = {}
    for name, matrix in distmats.items():
        query_idx, gallery_idx = _direction_indices(dataset, name)
        ranked = _evaluate_one(dataset, name, matrix, pids, camids, topk=topk)
        direction_records = []
        for row, test_index in enumerate(query_idx):
            present = ranked["topk_indices"][row] >= 0
            columns = ranked["topk_indices"][row][present]
            direction_records.append(
                QueryRecord(
                    direction=name,
                    query_index=int(test_index),
                    pid=dataset.test[test_index].pid,
                    camid=dataset.test[test_index].camid,
                    valid=bool(ranked["valid"][row]),
                    ap=float(ranked["ap"][row]),
                    inp=float(ranked["inp"][row]),
                    first_match_rank=int(ranked["first_match_rank"][row]),
                    num_matches=int(ranked["num_matches"][row]),
                    topk_indices=tuple(int(i) for i in gallery_idx[columns]),
                    topk_distances=tuple(float(d) for d in ranked["topk_distances"][row][present]),
                    topk_is_match=tuple(bool(m) for m in ranked["topk_is_match"][row][present]),
                )
            )
        records[name] = direction_records
    return records


def format_metrics_table(results: Mapping[str, Mapping[str, float | int]]) -> str:
    """One line per direction: ``IR->VIS: R1 .. | R5 .. | R10 .. | R20 .. | mAP .. | mINP ..``.

    ``results`` is the output of :func:`evaluate_directions` (values in percent).
    The line ends with the query/gallery counts and how many queries were skipped.
    """
    lines = []
    names = [n for n in DIRECTIONS if n in results] + [n for n in results if n not in DIRECTIONS]
    for name in names:
        m = results[name]
        cells = [f"R{k} {_pct(m.get(f'rank{k}'))}" for k in CMC_RANKS]
        cells += [f"mAP {_pct(m.get('mAP'))}", f"mINP {_pct(m.get('mINP'))}"]
        line = f"{DIRECTION_LABELS.get(name, name)}: " + " | ".join(cells)
        if "num_query" in m:
            line += (
                f"  ({m['num_query']} queries, {m.get('num_gallery', '?')} gallery, "
                f"{m.get('num_skipped', 0)} skipped)"
            )
        lines.append(line)
    return "\n".join(lines)


def _pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "  -  "
    return f"{float(value):5.2f}"
