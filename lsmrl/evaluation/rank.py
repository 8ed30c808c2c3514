"""Ranking metrics for re-identification: CMC, mAP and mINP.

This module follows the standard ReID protocol as implemented in torchreid's
``evaluate_rank`` (Market-1501 rule) and in the official HITSZ-VCM evaluation,
with three differences that are deliberate:

- it also reports mINP (Ye et al., "Deep Learning for Person Re-identification:
  A Survey and Outlook", TPAMI 2021, the AGW baseline) and per-query AP / INP;
- a query without any true match in its gallery is *skipped and counted*
  (``num_skipped``) instead of tripping an ``assert``; only when no query at all
  is left does it raise a ``ValueError``;
- it is vectorised numpy, processed in chunks of queries, with no Cython path.

Only numpy is needed: this module never imports torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Queries processed at once. A chunk builds a few (chunk, num_gallery) arrays,
#: so with 5,000 gallery items one chunk costs a few tens of MB at most.
DEFAULT_CHUNK_SIZE = 256


def _as_numpy(x: Any, name: str) -> np.ndarray:
    """A numpy view of ``x`` (numpy array, list, or a CPU/GPU torch tensor)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    array = np.asarray(x)
    if array.dtype == object:
        raise ValueError(f"{name} must be a numeric array, got dtype object")
    return array


def evaluate_rank(
    distmat: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    max_rank: int = 20,
    remove_same_camera: bool = True,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    topk: int = 0,
) -> dict[str, Any]:
    """Rank a gallery for every query and return CMC, mAP and mINP.

    Protocol
    --------
    For each query (a row of ``distmat``, smaller distance = more similar):

    1. The gallery is sorted by increasing distance with a **stable** sort, so
       **ties are broken by gallery order** (the item with the lower gallery
       index ranks first), exactly as ``np.argsort(..., kind="stable")``.
    2. If ``remove_same_camera`` (the HITSZ-VCM and Market-1501 rule), every
       gallery item with the query's identity **and** the query's camera is
       removed from the ranking before anything is counted. Items of the same
       camera but another identity stay. BUPTCampus uses no filter
       (``remove_same_camera=False``).
    3. The true matches are the remaining gallery items with the query's
       identity. A query with no true match left is **skipped**: it counts in
       ``num_skipped``, its ``valid`` is False, its ``ap``/``inp`` are NaN and
       its ``first_match_rank`` is -1. It does not enter CMC, mAP or mINP.
    4. With ranks counted 1, 2, ... over the remaining gallery:

       - CMC@k = fraction of valid queries whose first true match has rank <= k;
       - AP = mean over the true matches of precision at that match's rank
         (``hits so far / rank``); mAP = mean AP over valid queries;
       - INP = (number of true matches) / (rank of the last, i.e. hardest,
         true match); mINP = mean INP over valid queries.

    Parameters
    ----------
    distmat:
        (Q, G) distances (numpy array or torch tensor). NaN is rejected.
    q_pids, g_pids, q_camids, g_camids:
        (Q,) and (G,) identity and camera labels (any dtype comparable with ``==``).
    max_rank:
        Length of the returned CMC curve. It does not depend on the gallery
        size: if fewer than ``max_rank`` items remain, the curve simply stays
        flat after the last rank.
    remove_same_camera:
        Apply step 2 (True for HITSZ-VCM, False for BUPTCampus).
    chunk_size:
        Queries ranked at once; bounds memory for large (e.g. 5k x 5k) matrices.
    topk:
        If > 0, also return each query's first ``topk`` gallery items as ranked
        here (after the camera rule), from the same sort.

    Returns
    -------
    dict with
        ``cmc`` (max_rank,) float fractions; ``mAP`` and ``mINP`` floats in [0, 1];
        ``ap``, ``inp`` (Q,) float, NaN for skipped queries;
        ``first_match_rank`` (Q,) int, 1-based, -1 for skipped queries;
        ``num_matches`` (Q,) int, true matches left after the filter (0 if skipped);
        ``valid`` (Q,) bool; ``num_valid`` and ``num_skipped`` ints;
        with ``topk > 0`` also ``topk_indices`` (Q, topk) gallery columns,
        ``topk_distances`` (Q, topk) and ``topk_is_match`` (Q, topk) bool, padded
        with -1 / NaN / False where fewer items remain (see :func:`top_k_gallery`).

    Raises
    ------
    ValueError
        on inconsistent shapes, NaN distances, ``max_rank < 1``, or when no
        query has a true match in its gallery (nothing to evaluate).
    """
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    ranked = _rank(distmat, q_pids, g_pids, q_camids, g_camids, remove_same_camera, chunk_size, topk)
    valid = ranked["first_match_rank"] > 0
    num_query, num_gallery = ranked["shape"]
    num_valid = int(valid.sum())
    if num_valid == 0:
        rule = " after removing same-identity same-camera items" if remove_same_camera else ""
        raise ValueError(
            f"no query has a true match in the gallery{rule} ({num_query} queries, "
            f"{num_gallery} gallery items): check that query and gallery share identities"
        )

    ranks = np.arange(1, max_rank + 1)
    cmc = (ranked["first_match_rank"][valid, None] <= ranks[None, :]).mean(axis=0)
    result = {
        "cmc": cmc.astype(np.float64),
        "mAP": float(ranked["ap"][valid].mean()),
        "mINP": float(ranked["inp"][valid].mean()),
        "ap": ranked["ap"],
        "inp": ranked["inp"],
        "first_match_rank": ranked["first_match_rank"],
        "num_matches": ranked["num_matches"],
        "valid": valid,
        "num_valid": num_valid,
        "num_skipped": num_query - num_valid,
    }
    if topk > 0:
        result.update(topk_indices=ranked["topk_indices"], topk_distances=ranked["topk_distances"],
                      topk_is_match=ranked["topk_is_match"])
    return result


def top_k_gallery(
    distmat: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    k: int = 20,
    remove_same_camera: bool = True,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> dict[str, np.ndarray]:
    """The first ``k`` gallery items of every query's ranking, as :func:`evaluate_rank` ranks them.

    Same sort (stable, ties by gallery order) and same camera rule, so the
    items listed are exactly those the metrics count. Rows with fewer than
    ``k`` remaining items are padded with index -1, distance NaN, match False.
    Unlike :func:`evaluate_rank` it never raises for queries without a match.

    Returns ``{"indices": (Q, k) int gallery columns, "distances": (Q, k) float,
    "is_match": (Q, k) bool}``.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    ranked = _rank(distmat, q_pids, g_pids, q_camids, g_camids, remove_same_camera, chunk_size, k)
    return {
        "indices": ranked["topk_indices"],
        "distances": ranked["topk_distances"],
        "is_match": ranked["topk_is_match"],
    }


def rank_query(
    distances: Any,
    g_pids: Any,
    g_camids: Any,
    q_pid: int,
    q_camid: int,
    remove_same_camera: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """One query's whole ranking as :func:`evaluate_rank` counts it.

    Returns ``(gallery columns best first, is_match)`` after the camera rule:
    stable sort by distance (ties keep gallery order), same-identity same-camera
    items removed if ``remove_same_camera``.
    """
    d = np.asarray(distances, dtype=np.float64).reshape(1, -1)
    order, keep, is_match = _ranked_chunk(d, np.asarray([q_pid]), np.asarray(g_pids).reshape(-1),
                                          np.asarray([q_camid]), np.asarray(g_camids).reshape(-1),
                                          remove_same_camera)
    return order[0][keep[0]], is_match[0][keep[0]]


def _rank(distmat, q_pids, g_pids, q_camids, g_camids, remove_same_camera, chunk_size, topk) -> dict[str, Any]:
    """Validate the inputs, then rank every query chunk by chunk (one sort per query)."""
    distmat = _as_numpy(distmat, "distmat")
    q_pids = _as_numpy(q_pids, "q_pids").reshape(-1)
    g_pids = _as_numpy(g_pids, "g_pids").reshape(-1)
    q_camids = _as_numpy(q_camids, "q_camids").reshape(-1)
    g_camids = _as_numpy(g_camids, "g_camids").reshape(-1)
    if distmat.ndim != 2:
        raise ValueError(f"distmat must be 2-D (num_query, num_gallery), got shape {distmat.shape}")
    num_query, num_gallery = distmat.shape
    if q_pids.shape != (num_query,) or q_camids.shape != (num_query,):
        raise ValueError(
            f"q_pids and q_camids must have {num_query} entries (rows of distmat), "
            f"got {q_pids.shape[0]} and {q_camids.shape[0]}"
        )
    if g_pids.shape != (num_gallery,) or g_camids.shape != (num_gallery,):
        raise ValueError(
            f"g_pids and g_camids must have {num_gallery} entries (columns of distmat), "
            f"got {g_pids.shape[0]} and {g_camids.shape[0]}"
        )
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if topk < 0:
        raise ValueError(f"topk must be >= 0, got {topk}")
    if num_query == 0 or num_gallery == 0:
        raise ValueError(f"nothing to evaluate: {num_query} queries and {num_gallery} gallery items")
    if np.isnan(distmat).any():
        raise ValueError("distmat contains NaN; check the features (e.g. a zero vector or a diverged model)")

    out: dict[str, Any] = {
        "shape": (num_query, num_gallery),
        "ap": np.full(num_query, np.nan),
        "inp": np.full(num_query, np.nan),
        "first_match_rank": np.full(num_query, -1, dtype=np.int64),
        "num_matches": np.zeros(num_query, dtype=np.int64),
    }
    if topk:
        out["topk_indices"] = np.full((num_query, topk), -1, dtype=np.int64)
        out["topk_distances"] = np.full((num_query, topk), np.nan)
        out["topk_is_match"] = np.zeros((num_query, topk), dtype=bool)

    for start in range(0, num_query, chunk_size):
        rows = slice(start, min(start + chunk_size, num_query))
        chunk = distmat[rows]
        order, keep, is_match = _ranked_chunk(chunk, q_pids[rows], g_pids, q_camids[rows], g_camids, remove_same_camera)
        (out["ap"][rows], out["inp"][rows], out["first_match_rank"][rows],
         out["num_matches"][rows]) = _chunk_metrics(keep, is_match)
        if topk:
            _fill_topk(out, rows, chunk, order, keep, is_match, topk)
    return out


def _ranked_chunk(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    remove_same_camera: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort a chunk of queries' galleries; all outputs are (C, G), in ranked order.

    ``order``: gallery indices, best first (stable sort: ties keep gallery order);
    ``keep``: False where the camera rule removes the item;
    ``is_match``: a true match that stays in the ranking.
    """
    order = np.argsort(distmat, axis=1, kind="stable")
    same_pid = g_pids[order] == q_pids[:, None]
    if remove_same_camera:
        keep = ~(same_pid & (g_camids[order] == q_camids[:, None]))
    else:
        keep = np.ones_like(same_pid)
    return order, keep, same_pid & keep


def _chunk_metrics(keep: np.ndarray, is_match: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """AP, INP, first-match rank (-1 if none) and number of true matches for a chunk of queries."""
    # rank of each position among the kept items (1-based; meaningful where keep is True)
    rank = np.cumsum(keep, axis=1)
    hits = np.cumsum(is_match, axis=1)  # true matches seen so far
    num_matches = hits[:, -1]
    has_match = num_matches > 0

    rows = np.arange(keep.shape[0])
    first_pos = np.argmax(is_match, axis=1)  # first True (0 if none; masked below)
    last_pos = is_match.shape[1] - 1 - np.argmax(is_match[:, ::-1], axis=1)

    with np.errstate(invalid="ignore", divide="ignore"):
        precision_at_hits = np.where(is_match, hits / rank, 0.0)
        ap = precision_at_hits.sum(axis=1) / num_matches
        inp = num_matches / rank[rows, last_pos]
    first = rank[rows, first_pos]

    ap = np.where(has_match, ap, np.nan)
    inp = np.where(has_match, inp, np.nan)
    first = np.where(has_match, first, -1)
    return ap, inp, first, num_matches


def _fill_topk(out: dict, rows: slice, distmat: np.ndarray, order, keep, is_match, k: int) -> None:
    """Write the first ``k`` kept items of each ranked row of the chunk into ``out``."""
    # a stable sort of "removed?" moves kept positions to the front, in rank order
    front = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    available = np.take_along_axis(keep, front, axis=1)  # False only past the last kept item
    columns = np.take_along_axis(order, front, axis=1)
    distances = np.take_along_axis(distmat, columns, axis=1)
    width = columns.shape[1]  # < k when the gallery is smaller than k
    out["topk_indices"][rows, :width] = np.where(available, columns, -1)
    out["topk_distances"][rows, :width] = np.where(available, distances, np.nan)
    out["topk_is_match"][rows, :width] = np.take_along_axis(is_match, front, axis=1) & available
