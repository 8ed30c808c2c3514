"""Failure cases: the worst queries, failure rates by camera pair and attribute, impostors."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lsmrl.analysis.failure_stats import FailureStatistics, IdentityFailures, failure_by_identity, failure_statistics
from lsmrl.analysis.failures import ImpostorReport, find_impostors, worst_queries
from lsmrl.analysis.modality_gap import BASELINE_FEATURE
from lsmrl.data.tracklet import INFRARED_TO_VISIBLE
from lsmrl.model.stages import STAGES

if TYPE_CHECKING:  # pragma: no cover
    from lsmrl.analysis.explorer import Explorer


class FailureAnalysis:
    """``explorer.failure``: see the module docstring."""

    def __init__(self, explorer: "Explorer"):
        self.explorer = explorer

    def worst(self, direction: str = INFRARED_TO_VISIBLE, sort_by: str = "ap", limit: int | None = None,
              model: str = "main") -> list[dict]:
        """Valid queries sorted worst first by ``sort_by`` ("ap" or "inp"); rows as in ``Explorer.queries``."""
        ex = self.explorer
        ex.check_direction(direction)
        rows = [ex.query_dict(o) for o in worst_queries(ex.outcomes(model)[direction], direction, sort_by)]
        return rows[:limit] if limit is not None else rows

    def statistics(self, direction: str = INFRARED_TO_VISIBLE, model: str = "main") -> FailureStatistics:
        """Failure rate by camera pair and by attribute, and the positive/negative similarity histogram."""
        ex = self.explorer
        bundle = ex.bundle(model)
        ex.check_direction(direction)
        return ex.lazy(f"failstats/{model}/{direction}", lambda: failure_statistics(
            ex.outcomes(model)[direction], ex.dataset, direction, bundle.distmats[direction]))

    def by_identity(self, model: str = "main") -> list[IdentityFailures]:
        """Each identity's Rank-1 failure rate (95% Wilson interval) in every direction and in all, worst first."""
        ex = self.explorer
        return ex.lazy(f"failids/{model}", lambda: failure_by_identity(ex.outcomes(model)))

    def impostors(self, query: str | int, direction: str = INFRARED_TO_VISIBLE, max_items: int = 20,
                  model: str = "main") -> ImpostorReport:
        """Gallery items ranked above the query's first true match, with per-stage similarities and margins."""

        ex = self.explorer
        bundle = ex.bundle(model)
        index = ex.test_index(query)
        row = ex.query_row(index, direction)
        _, gallery = ex.dataset.directions[direction]
        stages = {s: bundle.features[s] for s in STAGES}
        if ex.baseline is not None and model == "main":
            stages = {"baseline": ex.baseline.features[BASELINE_FEATURE], **stages}
        return find_impostors(index, bundle.distmats[direction][row], np.asarray(gallery).reshape(-1), ex.dataset,
                              direction=direction, features_by_stage=stages, attributes=ex.dataset.attributes,
                              max_items=max_items)


__all__ = ["FailureAnalysis"]
