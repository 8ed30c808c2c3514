"""Failure cases: worst queries, impostors above the first true match, and where failures concentrate (anchors §7.2).

Inputs are the per-query records of :func:`lsmrl.evaluation.protocols.query_records`
(:class:`~lsmrl.evaluation.protocols.QueryRecord`) or their JSON form from
:func:`lsmrl.engine.extract.records_to_json`; :func:`normalise_records` turns
either into :class:`QueryOutcome` rows.

- :func:`worst_queries`: valid queries sorted by AP (or INP), worst first
  (fast-reid's ``--rank-sort ascending``); skipped queries (no true match left
  after the camera rule) are left out unless asked for.
- :func:`find_impostors`: for one query, the gallery items ranked **above its
  first true match** (exactly those, from the full ranking under the protocol's
  camera rule, not only the stored top-k), their similarity to the query at
  every stage (``stfl``/``sd``/``cmi``/``embedding``) next to the true match's,
  the **margin** (best impostor minus first true match: > 0 exactly when Rank-1
  fails) and, on SynthVVI, the attributes in which the impostor's identity
  differs from the query's.
- :func:`failure_statistics`: Rank-1 failure rate by camera pair (query camera,
  top-1 camera) and by identity attribute (rate ratio of queries with vs without
  a value: "infrared queries with a backpack fail 2.0x more"), and the positive
  vs negative similarity histograms.

"Similarity" is the ranking score: the cosine similarity (``1 - distance``) for
the cosine protocol (HITSZ-VCM, SynthVVI) and ``-distance`` for Euclidean
ranking (BUPTCampus), so a higher value always ranks first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from lsmrl.evaluation.rank import rank_query

#: Fields left out of attribute comparisons (identifiers, not appearance).
IGNORED_ATTRIBUTES = frozenset({"pid"})


# --------------------------------------------------------------------------- records
@dataclass(frozen=True)
class QueryOutcome:
    """One query's outcome in one direction (indices into ``dataset.test``)."""

    direction: str
    query_index: int
    tid: str
    pid: int
    camid: int
    valid: bool
    ap: float  # NaN if skipped
    inp: float  # NaN if skipped
    first_match_rank: int  # 1-based; -1 if skipped
    num_matches: int
    topk_indices: tuple[int, ...]
    topk_distances: tuple[float, ...]
    topk_is_match: tuple[bool, ...]

    @property
    def rank1_correct(self) -> bool:
        return self.valid and self.first_match_rank == 1

    def to_dict(self) -> dict:
        row = asdict(self)
        for key in ("ap", "inp"):
            row[key] = None if math.isnan(row[key]) else row[key]
        row["first_match_rank"] = None if self.first_match_rank < 0 else self.first_match_rank
        return row


def _outcome(item: Any, direction: str | None, dataset=None) -> QueryOutcome:
    if isinstance(item, QueryOutcome):
        return item
    get = item.get if isinstance(item, Mapping) else (lambda key, default=None: getattr(item, key, default))
    index = int(get("query_index"))
    ap, inp = get("ap"), get("inp")
    tid = get("query") if isinstance(item, Mapping) else None
    if not tid:
        tid = dataset.test[index].tid if dataset is not None else str(index)
    first = get("first_match_rank")
    valid = get("valid")
    return QueryOutcome(
        direction=str(get("direction", direction) or direction),
        query_index=index,
        tid=str(tid),
        pid=int(get("pid")),
        camid=int(get("camid")),
        valid=bool(valid) if valid is not None else ap is not None,
        ap=float("nan") if ap is None else float(ap),
        inp=float("nan") if inp is None else float(inp),
        first_match_rank=-1 if first is None else int(first),
        num_matches=int(get("num_matches", 0) or 0),
        topk_indices=tuple(int(i) for i in get("topk_indices", ())),
        topk_distances=tuple(float(d) for d in get("topk_distances", ())),
        topk_is_match=tuple(bool(m) for m in get("topk_is_match", ())),
    )


def normalise_records(records: Any, dataset=None, direction: str | None = None) -> dict[str, list[QueryOutcome]]:
    """``{direction: [QueryOutcome, ...]}`` from QueryRecords, their JSON form, or one direction's list."""
    if isinstance(records, Mapping):
        return {name: [_outcome(item, name, dataset) for item in items] for name, items in records.items()}
    items = list(records)
    name = direction or (items[0].direction if items and hasattr(items[0], "direction")
                         else items[0].get("direction") if items and isinstance(items[0], Mapping) else None)
    return {str(name): [_outcome(item, name, dataset) for item in items]}


def direction_outcomes(records: Any, direction: str | None, dataset=None) -> list[QueryOutcome]:
    table = normalise_records(records, dataset, direction)
    if direction is None:
        if len(table) != 1:
            raise ValueError(f"records hold several directions {sorted(table)}: pass direction=")
        return next(iter(table.values()))
    if direction not in table:
        raise ValueError(f"no records for direction {direction!r}; have {sorted(table)}")
    return table[direction]


def worst_queries(records: Any, direction: str | None = None, sort_by: str = "ap",
                  include_skipped: bool = False, dataset=None) -> list[QueryOutcome]:
    """Queries sorted by ``sort_by`` ("ap" or "inp") ascending, ties by first-match rank (worse first), then index."""
    if sort_by not in ("ap", "inp"):
        raise ValueError(f"sort_by must be 'ap' or 'inp', got {sort_by!r}")
    outcomes = direction_outcomes(records, direction, dataset)
    valid = [o for o in outcomes if o.valid]
    valid.sort(key=lambda o: (getattr(o, sort_by), -o.first_match_rank, o.query_index))
    if include_skipped:
        valid += [o for o in outcomes if not o.valid]
    return valid


# --------------------------------------------------------------------------- attributes
def _relevant(path: str, value: Any, parent: Mapping[str, Any]) -> bool:
    """False for SynthVVI fields that describe something absent (a plain top's pattern colour, a missing bag's colour)."""
    name = path.rsplit(".", 1)[-1]
    if name in IGNORED_ATTRIBUTES:
        return False
    if name.endswith("_colour") and parent.get(name[: -len("_colour")]) is False:
        return False
    if name in ("pattern_colour", "pattern_period") and parent.get("pattern") == "plain":
        return False
    return True


def flatten_attributes(attributes: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested attribute dicts -> ``{"accessories.backpack": True, "upper.colour": "red", ...}`` (irrelevant fields dropped)."""
    flat: dict[str, Any] = {}
    for key, value in attributes.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_attributes(value, path + "."))
        elif _relevant(path, value, attributes):
            flat[path] = value
    return flat


def is_categorical(value: Any) -> bool:
    return isinstance(value, (bool, str, int, np.integer, np.bool_)) and not isinstance(value, float)


def attribute_differences(query_attributes: Mapping[str, Any] | None, other_attributes: Mapping[str, Any] | None,
                          include_numeric: bool = False, numeric_tolerance: float = 0.15) -> list[dict]:
    """Fields in which two identities differ: ``[{"field", "query", "other"}, ...]``, sorted by field.

    Categorical fields (words, booleans, integer codes) are listed when unequal.
    Fields that exist on one side only (the colour of a bag the other identity
    does not carry) are left out: the field that makes them exist is listed.
    With ``include_numeric``, numeric fields (gait, thermal, body scales) that
    differ by more than ``numeric_tolerance`` relative to the larger magnitude
    are listed too. Empty if either side is unknown.
    """
    if not query_attributes or not other_attributes:
        return []
    a, b = flatten_attributes(query_attributes), flatten_attributes(other_attributes)
    out = []
    for name in sorted(set(a) & set(b)):
        va, vb = a[name], b[name]
        if va == vb:
            continue
        if isinstance(va, float) or isinstance(vb, float):
            if not include_numeric:
                continue
            scale = max(abs(float(va)), abs(float(vb)), 1e-9)
            if abs(float(va) - float(vb)) / scale <= numeric_tolerance:
                continue
        out.append({"field": name, "query": va, "other": vb})
    return out


def describe_attributes(attributes: Mapping[str, Any] | None) -> str:
    """A short readable summary of a SynthVVI identity ("tall broad; long black hair; backpack; red striped top ...")."""
    if not attributes:
        return ""
    get = lambda *path: _dig(attributes, path)  # noqa: E731
    body = " ".join(v for v in (get("body", "height"), get("body", "build")) if v and v not in ("medium", "average"))
    parts = [body] if body else []
    hair = " ".join(str(v) for v in (get("hair", "length"), get("hair", "colour")) if v)
    if hair:
        parts.append(f"{hair} hair")
    accessories = get("accessories") or {}
    carried = [name for name in ("backpack", "bag", "hat") if accessories.get(name)]
    if carried:
        parts.append(", ".join(carried))
    upper = " ".join(str(v) for v in (get("thermal", "upper_level"), get("upper", "colour"), get("upper", "pattern"))
                     if v and v not in ("medium", "plain"))
    if get("upper") is not None:
        parts.append(f"{upper} top, {get('upper', 'sleeves')} sleeves".strip())
    lower = " ".join(str(v) for v in (get("lower", "colour"), get("lower", "kind")) if v)
    if lower:
        parts.append(lower)
    shoes = " ".join(str(v) for v in (get("shoes", "colour"), get("shoes", "kind")) if v)
    if shoes:
        parts.append(shoes)
    return "; ".join(parts)


def _dig(data: Mapping[str, Any], path: Sequence[str]) -> Any:
    for key in path:
        if not isinstance(data, Mapping) or key not in data:
            return None
        data = data[key]
    return data


# --------------------------------------------------------------------------- impostors
def distance_to_similarity(distances: Any, metric: str) -> np.ndarray:
    """The ranking score: ``1 - d`` (cosine similarity) for "cosine", ``-d`` for "euclidean"."""
    d = np.asarray(distances, dtype=np.float64)
    return 1.0 - d if metric == "cosine" else -d


@dataclass
class RankedItem:
    """A gallery item in a query's ranking."""

    rank: int  # 1-based, after the camera rule
    test_index: int
    tid: str
    pid: int
    camid: int
    modality: str
    similarity: float  # ranking score (see the module docstring)
    distance: float
    is_match: bool
    stage_similarities: dict[str, float] = field(default_factory=dict)  # cosine(query, item) per stage
    attribute_differences: list[dict] = field(default_factory=list)  # vs the query's identity (SynthVVI)


@dataclass
class ImpostorReport:
    """The impostors of one query: everything ranked above its first true match."""

    direction: str
    query_index: int
    query_tid: str
    query_pid: int
    query_camid: int
    first_match: RankedItem | None  # None if the query has no true match (skipped by the metric)
    impostors: list[RankedItem]  # ranks 1 .. first_match.rank - 1 (capped at max_items)
    num_impostors: int  # all of them, even beyond max_items
    best_impostor: RankedItem | None  # the highest-ranked non-match (rank 1 if Rank-1 fails)
    margin: float | None  # best_impostor.similarity - first_match.similarity: > 0 iff Rank-1 fails
    stage_margins: dict[str, float] = field(default_factory=dict)  # the same margin at every stage (cosine)

    def to_dict(self) -> dict:
        return asdict(self)


def _stage_cosines(features_by_stage: Mapping[str, np.ndarray] | None, query: int, items: Sequence[int]
                   ) -> list[dict[str, float]]:
    out: list[dict[str, float]] = [{} for _ in items]
    if not features_by_stage or not len(items):
        return out
    for stage, features in features_by_stage.items():
        f = np.asarray(features)
        q = f[query] / max(float(np.linalg.norm(f[query])), 1e-12)
        g = f[list(items)]
        sims = g @ q / np.maximum(np.linalg.norm(g, axis=1), 1e-12)
        for slot, value in zip(out, sims):
            slot[stage] = float(value)
    return out


def rank_gallery(distances: Any, gallery_indices: Sequence[int], gallery_pids: Any, gallery_camids: Any,
                 query_pid: int, query_camid: int, camera_filter: bool) -> tuple[np.ndarray, np.ndarray]:
    """The full ranking of one query as :func:`lsmrl.evaluation.rank.evaluate_rank` counts it
    (:func:`~lsmrl.evaluation.rank.rank_query`), as ``(test indices best first, is_match)``."""
    columns, is_match = rank_query(distances, gallery_pids, gallery_camids, query_pid, query_camid, camera_filter)
    return np.asarray(gallery_indices, dtype=np.int64)[columns], is_match


def find_impostors(query_index: int, distances: Any, gallery_indices: Sequence[int], dataset, *,
                   direction: str = "", metric: str | None = None,
                   features_by_stage: Mapping[str, np.ndarray] | None = None,
                   attributes: Mapping[int, Mapping[str, Any]] | None = None, max_items: int = 20) -> ImpostorReport:
    """The gallery items ranked above ``query_index``'s first true match (see the module docstring).

    ``distances``: the query's (G,) distances to ``gallery_indices`` (test
    indices), as used for ranking; ``features_by_stage``: ``{stage: (N_test, D)}``
    for the per-stage similarities; ``attributes``: ``{pid: nested dict}``
    (``dataset.attributes`` on SynthVVI) for the attribute differences.
    """
    metric = metric or dataset.metric
    test = dataset.test
    query = test[int(query_index)]
    gallery_indices = np.asarray(gallery_indices, dtype=np.int64)
    g_pids = np.array([test[i].pid for i in gallery_indices])
    g_cams = np.array([test[i].camid for i in gallery_indices])
    d = np.asarray(distances, dtype=np.float64).reshape(-1)
    if len(d) != len(gallery_indices):
        raise ValueError(f"{len(d)} distances for {len(gallery_indices)} gallery items")
    ranked, is_match = rank_gallery(d, gallery_indices, g_pids, g_cams, query.pid, query.camid, dataset.camera_filter)
    distance_of = dict(zip(gallery_indices.tolist(), d.tolist()))
    match_positions = np.flatnonzero(is_match)
    first_pos = int(match_positions[0]) if len(match_positions) else None
    above = ranked[: first_pos if first_pos is not None else min(len(ranked), max_items)]
    non_match_positions = np.flatnonzero(~is_match)
    best_pos = int(non_match_positions[0]) if len(non_match_positions) else None
    query_attrs = attributes.get(query.pid) if attributes else None

    def item(position: int, with_attributes: bool) -> RankedItem:
        index = int(ranked[position])
        t = test[index]
        distance = distance_of[index]
        return RankedItem(
            rank=position + 1, test_index=index, tid=t.tid or str(index), pid=int(t.pid), camid=int(t.camid),
            modality=t.modality, similarity=float(distance_to_similarity(distance, metric)), distance=float(distance),
            is_match=bool(is_match[position]),
            attribute_differences=attribute_differences(query_attrs, attributes.get(t.pid))
            if with_attributes and attributes else [])

    impostors = [item(p, True) for p in range(min(len(above), max_items))]
    first = item(first_pos, False) if first_pos is not None else None
    best = item(best_pos, True) if best_pos is not None else None
    listed = impostors + [x for x in (first, best) if x is not None]
    for entry, sims in zip(listed, _stage_cosines(features_by_stage, int(query_index),
                                                  [x.test_index for x in listed])):
        entry.stage_similarities = sims
    margin = None
    stage_margins: dict[str, float] = {}
    if first is not None and best is not None:
        margin = best.similarity - first.similarity
        stage_margins = {s: best.stage_similarities[s] - first.stage_similarities[s]
                         for s in first.stage_similarities}
    return ImpostorReport(
        direction=direction, query_index=int(query_index), query_tid=query.tid or str(query_index),
        query_pid=int(query.pid), query_camid=int(query.camid), first_match=first, impostors=impostors,
        num_impostors=int(first_pos) if first_pos is not None else len(ranked), best_impostor=best,
        margin=margin, stage_margins=stage_margins)


__all__ = ["ImpostorReport", "QueryOutcome", "RankedItem", "attribute_differences", "describe_attributes",
           "direction_outcomes", "distance_to_similarity", "find_impostors", "flatten_attributes", "is_categorical",
           "normalise_records", "rank_gallery", "worst_queries"]
