"""Two checkpoints on the same queries (anchors §7, feature 7).

:func:`compare_records` pairs two models' per-query records (QueryRecords or
their JSON form, same data set and direction) by query and reports, per query,
the AP change (B - A), whether its top-1 went from wrong to right (``fixed``)
or right to wrong (``broken``), and how its first true match moved in the
ranking (``rank_change`` = rank under B - rank under A: negative = moved up).
Queries that are skipped by either model (no true match after the camera rule;
the same for both on one data set) are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lsmrl.analysis.failures import QueryOutcome, normalise_records


@dataclass(frozen=True)
class QueryChange:
    """One query under model A and model B."""

    query_index: int
    tid: str
    pid: int
    camid: int
    ap_a: float
    ap_b: float
    ap_change: float  # ap_b - ap_a
    first_match_rank_a: int
    first_match_rank_b: int
    rank_change: int  # rank_b - rank_a (negative: the true match moved up under B)
    top1_correct_a: bool
    top1_correct_b: bool
    top1_a: int | None  # test index of the top-1 item
    top1_b: int | None

    @property
    def status(self) -> str:
        """"fixed" (wrong -> right at rank 1), "broken" (right -> wrong) or "same"."""
        if self.top1_correct_b and not self.top1_correct_a:
            return "fixed"
        if self.top1_correct_a and not self.top1_correct_b:
            return "broken"
        return "same"


@dataclass
class Comparison:
    """Model A vs model B in one direction; ``changes`` sorted by AP change, largest loss first."""

    direction: str
    label_a: str
    label_b: str
    changes: list[QueryChange]
    summary: dict[str, Any]

    @property
    def fixed(self) -> list[QueryChange]:
        return [c for c in self.changes if c.status == "fixed"]

    @property
    def broken(self) -> list[QueryChange]:
        return [c for c in self.changes if c.status == "broken"]

    def to_dict(self) -> dict:
        return {"direction": self.direction, "label_a": self.label_a, "label_b": self.label_b,
                "changes": [dict(asdict(c), status=c.status) for c in self.changes], "summary": dict(self.summary),
                "fixed": [c.tid for c in self.fixed], "broken": [c.tid for c in self.broken]}


def _summary(changes: list[QueryChange], num_a: int, num_b: int, tolerance: float) -> dict[str, Any]:
    if not changes:
        return {"num_queries": 0}
    ap_a = np.array([c.ap_a for c in changes])
    ap_b = np.array([c.ap_b for c in changes])
    delta = ap_b - ap_a
    return {
        "num_queries": len(changes),
        "num_unpaired": (num_a - len(changes)) + (num_b - len(changes)),
        "mAP_a": float(100 * ap_a.mean()),
        "mAP_b": float(100 * ap_b.mean()),
        "rank1_a": float(100 * np.mean([c.top1_correct_a for c in changes])),
        "rank1_b": float(100 * np.mean([c.top1_correct_b for c in changes])),
        "mean_ap_change": float(delta.mean()),
        "improved": int(np.sum(delta > tolerance)),
        "worsened": int(np.sum(delta < -tolerance)),
        "unchanged": int(np.sum(np.abs(delta) <= tolerance)),
        "fixed": sum(c.status == "fixed" for c in changes),
        "broken": sum(c.status == "broken" for c in changes),
        "top1_item_changed": sum(c.top1_a != c.top1_b for c in changes),
        "true_match_moved_up": sum(c.rank_change < 0 for c in changes),
        "true_match_moved_down": sum(c.rank_change > 0 for c in changes),
        "median_rank_change": float(np.median([c.rank_change for c in changes])),
    }


def compare_records(records_a: Any, records_b: Any, direction: str, dataset=None, label_a: str = "A",
                    label_b: str = "B", tolerance: float = 1e-9) -> Comparison:
    """Per-query changes from model A to model B in ``direction`` (see the module docstring)."""
    table_a = normalise_records(records_a, dataset)
    table_b = normalise_records(records_b, dataset)
    for name, table in ((label_a, table_a), (label_b, table_b)):
        if direction not in table:
            raise ValueError(f"{name} has no records for direction {direction!r}")
    by_query_b: dict[int, QueryOutcome] = {o.query_index: o for o in table_b[direction]}
    changes = []
    for a in table_a[direction]:
        b = by_query_b.get(a.query_index)
        if b is None or not a.valid or not b.valid:
            continue
        if a.pid != b.pid:
            raise ValueError(f"query {a.query_index} has identity {a.pid} in A but {b.pid} in B: "
                             "the records come from different data sets")
        changes.append(QueryChange(
            query_index=a.query_index, tid=a.tid, pid=a.pid, camid=a.camid, ap_a=a.ap, ap_b=b.ap,
            ap_change=b.ap - a.ap, first_match_rank_a=a.first_match_rank, first_match_rank_b=b.first_match_rank,
            rank_change=b.first_match_rank - a.first_match_rank, top1_correct_a=a.rank1_correct,
            top1_correct_b=b.rank1_correct, top1_a=a.topk_indices[0] if a.topk_indices else None,
            top1_b=b.topk_indices[0] if b.topk_indices else None))
    changes.sort(key=lambda c: (c.ap_change, c.query_index))
    num_a = sum(o.valid for o in table_a[direction])
    num_b = sum(o.valid for o in table_b[direction])
    return Comparison(direction, label_a, label_b, changes, _summary(changes, num_a, num_b, tolerance))


def compare_all(records_a: Any, records_b: Any, dataset=None, label_a: str = "A",
                label_b: str = "B") -> dict[str, Comparison]:
    """:func:`compare_records` for every direction both record sets have."""
    table_a = normalise_records(records_a, dataset)
    table_b = normalise_records(records_b, dataset)
    return {name: compare_records(table_a, table_b, name, dataset, label_a, label_b)
            for name in table_a if name in table_b}


def summary_table(comparisons: Mapping[str, Comparison]) -> list[dict]:
    """One row per direction with the summary counts (for a table next to the figure)."""
    return [{"direction": name, **c.summary} for name, c in comparisons.items()]


__all__ = ["Comparison", "QueryChange", "compare_all", "compare_records", "summary_table"]
