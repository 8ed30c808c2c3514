"""Failure rates over all queries: by camera pair and by attribute (with Wilson intervals), and the
similarity histogram of true matches against impostors.

A failure is a query whose Rank-1 item is not a true match. Groups of fewer
than :data:`MIN_GROUP` queries are reported but not ranked (too few to say
anything), and every rate carries its 95% Wilson score interval.

Under a protocol with the camera rule (same identity, same camera: removed
from the gallery), a top-1 item from the query's own camera is always another
identity, so the (camera c, camera c) cell of the camera-pair table fails by
construction; its rows say so (``same_camera_excluded``).
:func:`failure_by_identity` gives each identity's failure rate in every
direction and in all, worst first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from lsmrl.analysis.failures import (
    QueryOutcome,
    direction_outcomes,
    distance_to_similarity,
    flatten_attributes,
    is_categorical,
)

#: Fields left out of attribute comparisons (identifiers, not appearance).
IGNORED_ATTRIBUTES = frozenset({"pid"})


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
    camera_filter: bool = False  # the protocol removes same-identity same-camera gallery items

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
    """Rank-1 failure rate by (query camera, top-1 camera) and by query camera alone.

    A pair row's ``same_camera_excluded`` is True where the protocol's camera rule
    makes it a failure by construction (top-1 from the query's own camera)."""
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
    excluded = bool(getattr(dataset, "camera_filter", False))
    by_pair = [_with_interval({"query_camid": q, "top1_camid": t, "num_queries": n, "num_failures": f,
                               "failure_rate": f / n, "same_camera_excluded": excluded and q == t},
                              "num_failures", "num_queries")
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
            if is_categorical(value):
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
    outcomes = direction_outcomes(records, direction, dataset)
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
        histogram=histogram, camera_filter=bool(getattr(dataset, "camera_filter", False)))


@dataclass(frozen=True)
class FailureCount:
    """Rank-1 failures among valid queries, with the 95% Wilson interval of the rate."""

    num_queries: int
    num_failures: int

    @property
    def rate(self) -> float | None:
        return _rate(self.num_failures, self.num_queries)

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.num_failures, self.num_queries)


@dataclass(frozen=True)
class IdentityFailures:
    """One identity's Rank-1 failures per direction (only directions where it has valid queries) and in all."""

    pid: int
    total: FailureCount
    by_direction: dict[str, FailureCount] = field(default_factory=dict)


def failure_by_identity(outcomes: Mapping[str, Sequence[QueryOutcome]]) -> list[IdentityFailures]:
    """Each identity's Rank-1 failures over its valid queries, per direction and in all directions.

    ``outcomes``: ``{direction: [QueryOutcome]}``. Queries without a true match
    are left out (the metric skips them); an identity without any valid query is
    left out. Sorted worst first: by the failure rate over all directions, then
    by the number of failures, then by identity.
    """
    counts: dict[int, dict[str, list[int]]] = {}
    for direction, rows in outcomes.items():
        for o in rows:
            if not o.valid:
                continue
            pair = counts.setdefault(int(o.pid), {}).setdefault(direction, [0, 0])
            pair[0] += 1
            pair[1] += int(not o.rank1_correct)
    table = []
    for pid, by_direction in counts.items():
        per = {d: FailureCount(n, f) for d, (n, f) in by_direction.items()}
        total = FailureCount(sum(c.num_queries for c in per.values()), sum(c.num_failures for c in per.values()))
        table.append(IdentityFailures(pid, total, per))
    table.sort(key=lambda row: (-row.total.rate, -row.total.num_failures, row.pid))
    return table


__all__ = ["FailureCount", "FailureStatistics", "IdentityFailures", "MIN_GROUP", "failure_by_attribute",
           "failure_by_camera_pair", "failure_by_identity", "failure_statistics", "similarity_histogram",
           "wilson_interval"]
