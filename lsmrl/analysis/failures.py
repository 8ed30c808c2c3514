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


def _direction_list(records: Any, direction: str | None, dataset=None) -> list[QueryOutcome]:
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
    outcomes = _direction_list(records, direction, dataset)
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


def _is_categorical(value: Any) -> bool:
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
    """The full ranking of one query as :func:`lsmrl.evaluation.rank.evaluate_rank` counts it.

    Returns ``(test indices best first, is_match)``: stable sort by distance (ties
    by gallery order), same-identity same-camera items removed if ``camera_filter``.
    """
    d = np.asarray(distances, dtype=np.float64).reshape(-1)
    gallery = np.asarray(gallery_indices, dtype=np.int64)
    pids, camids = np.asarray(gallery_pids), np.asarray(gallery_camids)
    order = np.argsort(d, kind="stable")
    same = pids[order] == query_pid
    keep = ~(same & (camids[order] == query_camid)) if camera_filter else np.ones(len(order), dtype=bool)
    return gallery[order[keep]], same[keep]


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


# --------------------------------------------------------------------------- aggregates
@dataclass
class FailureStatistics:
    """Where Rank-1 failures concentrate in one direction."""

    direction: str
    query_modality: str
    num_queries: int
    num_valid: int
    num_failures: int  # valid queries whose top-1 is not a true match
    failure_rate: float
    by_camera_pair: list[dict]  # query_camid, top1_camid, num_queries, num_failures, failure_rate
    by_query_camera: list[dict]  # query_camid, num_queries, num_failures, failure_rate
    by_attribute: list[dict]  # field, value, with/without counts and rates, rate_ratio, summary
    histogram: dict | None  # positive vs negative similarity histogram (see similarity_histogram)

    def to_dict(self) -> dict:
        return asdict(self)


def _rate(failures: int, total: int) -> float | None:
    return failures / total if total else None


#: Groups with fewer queries than this are greyed in the figures: their rate says almost nothing.
MIN_GROUP = 5


def wilson_interval(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``successes / total`` (95% for ``z = 1.96``).

    Unlike the normal approximation it stays inside [0, 1] and is not empty at 0/n or n/n, which is
    what small groups (2 of 2, 0 of 3) need; ``(0, 1)`` when ``total`` is 0."""
    if total <= 0:
        return 0.0, 1.0
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * np.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def _with_interval(row: dict, failures: str, total: str, prefix: str = "") -> dict:
    low, high = wilson_interval(row[failures], row[total])
    row[f"{prefix}ci_low"], row[f"{prefix}ci_high"] = low, high
    return row


def failure_by_camera_pair(outcomes: Sequence[QueryOutcome], dataset) -> tuple[list[dict], list[dict]]:
    """Rank-1 failure rate by (query camera, top-1 camera) and by query camera alone."""
    pairs: dict[tuple[int, int], list[int]] = {}
    cams: dict[int, list[int]] = {}
    for o in outcomes:
        if not o.valid or not o.topk_indices:
            continue
        top1 = int(dataset.test[o.topk_indices[0]].camid)
        failed = int(not o.rank1_correct)
        for table, key in ((pairs, (o.camid, top1)), (cams, o.camid)):
            counts = table.setdefault(key, [0, 0])
            counts[0] += 1
            counts[1] += failed
    by_pair = [_with_interval({"query_camid": q, "top1_camid": t, "num_queries": n, "num_failures": f,
                               "failure_rate": f / n}, "num_failures", "num_queries")
               for (q, t), (n, f) in sorted(pairs.items())]
    by_cam = [_with_interval({"query_camid": q, "num_queries": n, "num_failures": f, "failure_rate": f / n},
                             "num_failures", "num_queries")
              for q, (n, f) in sorted(cams.items())]
    return by_pair, by_cam


def failure_by_attribute(outcomes: Sequence[QueryOutcome], attributes: Mapping[int, Mapping[str, Any]] | None,
                         query_modality: str = "", min_support: int = 2, max_values: int = 12) -> list[dict]:
    """Rank-1 failure rate of queries whose identity has an attribute value vs those without it.

    Only categorical fields (words, booleans, integer codes) with at most
    ``max_values`` distinct values; booleans are reported for ``True`` only.
    ``rate_ratio`` = rate with / rate without (None when the rate without is 0);
    rows with fewer than ``min_support`` queries on either side are left out.
    Sorted by ratio, largest first (an infinite ratio first).
    """
    if not attributes:
        return []
    valid = [o for o in outcomes if o.valid]
    flat = {o.query_index: flatten_attributes(attributes.get(o.pid) or {}) for o in valid}
    fields: dict[str, set] = {}
    for values in flat.values():
        for name, value in values.items():
            if _is_categorical(value):
                fields.setdefault(name, set()).add(value)
    rows = []
    who = f"{query_modality} queries" if query_modality else "queries"
    for name in sorted(fields):
        values = fields[name]
        if len(values) < 2 or len(values) > max_values:
            continue
        if all(isinstance(v, (bool, np.bool_)) for v in values):
            values = {True}
        for value in sorted(values, key=str):
            with_ = [o for o in valid if flat[o.query_index].get(name) == value]
            without = [o for o in valid if name in flat[o.query_index] and flat[o.query_index][name] != value]
            if len(with_) < min_support or len(without) < min_support:
                continue
            fail_with = sum(not o.rank1_correct for o in with_)
            fail_without = sum(not o.rank1_correct for o in without)
            rate_with, rate_without = fail_with / len(with_), fail_without / len(without)
            ratio = rate_with / rate_without if rate_without > 0 else None
            label = name if value is True else f"{name}={value}"
            if ratio is not None:
                summary = f"{who} with {label} fail {ratio:.2f}x as often ({fail_with}/{len(with_)} vs {fail_without}/{len(without)})"
            else:
                summary = (f"{who} with {label}: {fail_with}/{len(with_)} fail; none of the {len(without)} without it fail")
            row = {"field": name, "value": value, "num_with": len(with_), "failures_with": fail_with,
                   "rate_with": rate_with, "num_without": len(without), "failures_without": fail_without,
                   "rate_without": rate_without, "rate_ratio": ratio, "summary": summary}
            _with_interval(row, "failures_with", "num_with", "with_")
            _with_interval(row, "failures_without", "num_without", "without_")
            rows.append(row)

    def order(row: dict) -> tuple:
        if row["rate_ratio"] is None:
            return (0, -row["rate_with"], -row["num_with"])
        return (1, -row["rate_ratio"], -row["num_with"])

    rows.sort(key=order)
    return rows


def similarity_histogram(distmat: Any, query_indices: Sequence[int], gallery_indices: Sequence[int], dataset,
                         metric: str | None = None, bins: int = 50) -> dict:
    """Histogram of the ranking similarity of positive pairs (same identity, after the camera rule) vs negatives.

    Returns ``{"edges", "positive", "negative"}`` (counts) plus the means and pair
    counts; bins span the observed range.
    """
    metric = metric or dataset.metric
    sims = distance_to_similarity(distmat, metric)
    q_pids = np.array([dataset.test[i].pid for i in query_indices])
    g_pids = np.array([dataset.test[i].pid for i in gallery_indices])
    q_cams = np.array([dataset.test[i].camid for i in query_indices])
    g_cams = np.array([dataset.test[i].camid for i in gallery_indices])
    same = q_pids[:, None] == g_pids[None, :]
    keep = ~(same & (q_cams[:, None] == g_cams[None, :])) if dataset.camera_filter else np.ones_like(same)
    positive, negative = sims[same & keep], sims[~same]
    low, high = float(sims.min()), float(sims.max())
    if high <= low:
        high = low + 1e-6
    edges = np.linspace(low, high, bins + 1)
    return {
        "metric": metric,
        "edges": edges.tolist(),
        "positive": np.histogram(positive, edges)[0].tolist(),
        "negative": np.histogram(negative, edges)[0].tolist(),
        "num_positive": int(positive.size),
        "num_negative": int(negative.size),
        "mean_positive": float(positive.mean()) if positive.size else None,
        "mean_negative": float(negative.mean()) if negative.size else None,
    }


def failure_statistics(records: Any, dataset, direction: str | None = None, distmat: Any = None,
                       attributes: Mapping[int, Mapping[str, Any]] | None = None, bins: int = 50,
                       min_support: int = 2) -> FailureStatistics:
    """Camera-pair and attribute failure rates (+ the similarity histogram if ``distmat`` is given)."""
    outcomes = _direction_list(records, direction, dataset)
    direction = direction or (outcomes[0].direction if outcomes else "")
    query_modality = dataset.test[outcomes[0].query_index].modality if outcomes else ""
    valid = [o for o in outcomes if o.valid]
    failures = sum(not o.rank1_correct for o in valid)
    by_pair, by_cam = failure_by_camera_pair(outcomes, dataset)
    if attributes is None:
        attributes = dataset.attributes
    histogram = None
    if distmat is not None and direction in dataset.directions:
        q_idx, g_idx = dataset.directions[direction]
        histogram = similarity_histogram(distmat, q_idx, g_idx, dataset, bins=bins)
    return FailureStatistics(
        direction=direction, query_modality=query_modality, num_queries=len(outcomes), num_valid=len(valid),
        num_failures=failures, failure_rate=failures / len(valid) if valid else float("nan"),
        by_camera_pair=by_pair, by_query_camera=by_cam,
        by_attribute=failure_by_attribute(outcomes, attributes, query_modality, min_support=min_support),
        histogram=histogram)


# --------------------------------------------------------------------------- figures
def similarity_histogram_figure(histogram: Mapping[str, Any], title: str = "Positive vs negative similarity"):
    """Overlaid densities of positive and negative pairs (bars over the shared bins)."""
    import plotly.graph_objects as go

    edges = np.asarray(histogram["edges"])
    centres = (edges[:-1] + edges[1:]) / 2
    width = float(edges[1] - edges[0]) if len(edges) > 1 else 1.0
    figure = go.Figure()
    for name, colour in (("positive", "#2a9d3f"), ("negative", "#d62828")):
        counts = np.asarray(histogram[name], dtype=np.float64)
        density = counts / max(counts.sum() * width, 1e-12)
        figure.add_bar(x=centres, y=density, width=width, name=f"{name} ({int(counts.sum())} pairs)",
                       marker_color=colour, opacity=0.55, customdata=counts,
                       hovertemplate="similarity %{x:.3f}<br>density %{y:.2f}<br>%{customdata} pairs<extra></extra>")
    label = "cosine similarity" if histogram.get("metric", "cosine") == "cosine" else "-euclidean distance"
    figure.update_layout(barmode="overlay", title=title, xaxis_title=label, yaxis_title="density",
                         template="plotly_white")
    return figure


def camera_pair_figure(statistics: FailureStatistics, min_group: int = MIN_GROUP):
    """Heatmap of the Rank-1 failure rate by (query camera, top-1 camera); every cell shows its counts
    ("failures/queries"), hover adds the Wilson 95% interval; cells with fewer than ``min_group`` queries
    are grey (their rate is too uncertain to colour)."""
    import plotly.graph_objects as go

    rows = statistics.by_camera_pair
    q_cams = sorted({r["query_camid"] for r in rows})
    t_cams = sorted({r["top1_camid"] for r in rows})
    z = [[None] * len(t_cams) for _ in q_cams]
    small = [[None] * len(t_cams) for _ in q_cams]
    text = [[""] * len(t_cams) for _ in q_cams]
    hover = [[""] * len(t_cams) for _ in q_cams]
    for r in rows:
        i, j = q_cams.index(r["query_camid"]), t_cams.index(r["top1_camid"])
        low, high = wilson_interval(r["num_failures"], r["num_queries"])
        text[i][j] = f"{r['num_failures']}/{r['num_queries']}"
        hover[i][j] = (f"{r['num_failures']} of {r['num_queries']} fail: {100 * r['failure_rate']:.0f}% "
                       f"(95% CI {100 * low:.0f}-{100 * high:.0f}%)")
        if r["num_queries"] >= min_group:
            z[i][j] = r["failure_rate"]
        else:
            small[i][j] = 0.5
    x = [f"cam {c}" for c in t_cams]
    y = [f"cam {c}" for c in q_cams]
    figure = go.Figure([
        go.Heatmap(z=z, x=x, y=y, text=text, customdata=hover, texttemplate="%{text}", colorscale="Reds", zmin=0,
                   zmax=1, colorbar=dict(title="failure rate"), name=f">= {min_group} queries",
                   hovertemplate="query %{y}, top-1 %{x}<br>%{customdata}<extra></extra>"),
        go.Heatmap(z=small, x=x, y=y, text=text, customdata=hover, texttemplate="%{text}", showscale=False,
                   colorscale=[[0, "#d9d9d9"], [1, "#d9d9d9"]], zmin=0, zmax=1, name=f"< {min_group} queries",
                   hovertemplate="query %{y}, top-1 %{x}<br>%{customdata}<br>(too few queries to colour)"
                                 "<extra></extra>")])
    figure.update_layout(title=f"Rank-1 failures by camera pair ({statistics.direction}); "
                               f"cells: failures/queries, grey: under {min_group} queries",
                         xaxis_title="top-1 camera", yaxis_title="query camera", template="plotly_white")
    return figure


def attribute_failure_figure(statistics: FailureStatistics, top: int = 15, min_group: int = MIN_GROUP):
    """For the attributes that matter most: the Rank-1 failure rate of queries with the attribute and without
    it, each with its Wilson 95% interval; attributes with fewer than ``min_group`` queries on either side
    are left out (the caption says how many)."""
    import plotly.graph_objects as go

    rows = [r for r in statistics.by_attribute if r["num_with"] >= min_group and r["num_without"] >= min_group]
    hidden = len(statistics.by_attribute) - len(rows)
    rows = [r for r in rows if r["rate_ratio"] is not None][:top]
    labels = [r["field"] if r["value"] is True else f"{r['field']}={r['value']}" for r in rows]
    figure = go.Figure()
    for side, colour, name in (("with", "#d62828", "with the attribute"), ("without", "#6c757d", "without it")):
        rates = [r[f"rate_{side}"] for r in rows]
        lows = [r[f"{side}_ci_low"] for r in rows]
        highs = [r[f"{side}_ci_high"] for r in rows]
        counts = [f"{r[f'failures_{side}']}/{r[f'num_{side}']}" for r in rows]
        figure.add_trace(go.Scatter(
            x=rates, y=labels, mode="markers", name=name, marker=dict(color=colour, size=9),
            error_x=dict(type="data", symmetric=False, array=[h - v for h, v in zip(highs, rates)],
                         arrayminus=[v - lo for v, lo in zip(rates, lows)], color=colour, thickness=1.5),
            customdata=[[c, 100 * lo, 100 * h] for c, lo, h in zip(counts, lows, highs)],
            hovertemplate="%{y} " + side + ": %{customdata[0]} fail = %{x:.0%} (95% CI %{customdata[1]:.0f}-"
                          "%{customdata[2]:.0f}%)<extra></extra>"))
    title = f"Rank-1 failure rate with vs without each attribute ({statistics.query_modality} queries; 95% Wilson)"
    if hidden:
        title += f"<br><sup>{hidden} attribute values with under {min_group} queries on a side are not shown</sup>"
    figure.update_layout(title=title, xaxis=dict(title="Rank-1 failure rate", tickformat=".0%", range=[0, 1.02]),
                         yaxis=dict(autorange="reversed"), template="plotly_white", legend=dict(orientation="h"),
                         height=max(360, 28 * len(rows) + 160))
    return figure


__all__ = ["MIN_GROUP", "wilson_interval", "FailureStatistics", "ImpostorReport", "QueryOutcome", "RankedItem", "attribute_differences",
           "attribute_failure_figure", "camera_pair_figure", "describe_attributes", "distance_to_similarity",
           "failure_by_attribute", "failure_by_camera_pair", "failure_statistics", "find_impostors",
           "flatten_attributes", "normalise_records", "rank_gallery", "similarity_histogram",
           "similarity_histogram_figure", "worst_queries"]
