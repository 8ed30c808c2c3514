"""Failure cases: the worst queries, failure rates by camera pair and attribute, impostors, and what each
stage of the model did to one query (:meth:`FailureAnalysis.stage_ranks`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lsmrl.analysis.failure_stats import FailureStatistics, IdentityFailures, failure_by_identity, failure_statistics
from lsmrl.analysis.failures import ImpostorReport, find_impostors, rank_gallery, worst_queries
from lsmrl.analysis.modality_gap import BASELINE_FEATURE, STAGE_LABELS
from lsmrl.data.tracklet import INFRARED_TO_VISIBLE
from lsmrl.evaluation.distance import compute_distance
from lsmrl.model.stages import STAGES

if TYPE_CHECKING:  # pragma: no cover
    from lsmrl.analysis.explorer import Explorer


@dataclass(frozen=True)
class StageRank:
    """One query ranked by one stage's features: where its first true match lands and by how much the best
    other identity (the top impostor) beats or trails it, by cosine similarity.

    ``margin`` is the top impostor's similarity minus the first true match's: above 0 the impostor ranks
    above the true match (the query fails at rank 1 at this stage), below 0 the true match leads by that much.
    Every field but ``stage`` and ``label`` is None when the gallery holds no true match (or no impostor)
    after the camera rule.
    """

    stage: str  # a name of lsmrl.model.stages.STAGES
    label: str  # the stage in words: "STFL", "after SD", "after CMI", "final embedding"
    first_match_rank: int | None  # 1-based, after the camera rule
    first_match_tid: str | None
    first_match_similarity: float | None
    top_impostor_tid: str | None
    top_impostor_similarity: float | None
    margin: float | None
    gallery_size: int  # items ranked after the camera rule


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

    def stage_ranks(self, query: str | int, direction: str = INFRARED_TO_VISIBLE,
                    model: str = "main") -> list[StageRank]:
        """What each stage did to ``query``: for STFL, after SD, after CMI and the final embedding, the rank
        of the first true match and the top impostor's margin when the gallery of ``direction`` is ranked by
        the cosine similarity of that stage's features, with the camera rule of
        :func:`lsmrl.evaluation.rank.rank_query` (the same gallery and rule as :meth:`Explorer.retrieve`).

        Why per stage: a query that fails at the end may have been right after STFL and lost by SD or CMI
        (or the reverse); the margin says how close each stage came. On a cosine protocol the final
        embedding's row is the explorer's own ranking (its distance matrix), so its rank is the one
        :meth:`Explorer.retrieve` reports.
        """
        ex = self.explorer
        bundle = ex.bundle(model)
        index = ex.test_index(query)
        row = ex.query_row(index, direction)
        _, gallery = ex.dataset.directions[direction]
        gallery = np.asarray(gallery, dtype=np.int64).reshape(-1)
        test = ex.dataset.test
        q = test[index]
        pids = np.array([test[i].pid for i in gallery])
        cams = np.array([test[i].camid for i in gallery])
        out = []
        for stage in STAGES:
            if stage == "embedding" and ex.dataset.metric == "cosine":
                distances = np.asarray(bundle.distmats[direction][row], dtype=np.float64)
            else:
                features = bundle.features[stage]
                distances = np.asarray(compute_distance(features[[index]], features[gallery], "cosine"),
                                       dtype=np.float64)[0]
            ranked, is_match = rank_gallery(distances, gallery, pids, cams, q.pid, q.camid, ex.dataset.camera_filter)
            similarity_of = dict(zip(gallery.tolist(), (1.0 - distances).tolist()))
            matches, others = np.flatnonzero(is_match), np.flatnonzero(~is_match)
            first = int(ranked[matches[0]]) if len(matches) else None
            impostor = int(ranked[others[0]]) if len(others) else None
            first_sim = similarity_of[first] if first is not None else None
            impostor_sim = similarity_of[impostor] if impostor is not None else None
            out.append(StageRank(
                stage=stage, label=STAGE_LABELS.get(stage, stage),
                first_match_rank=int(matches[0]) + 1 if len(matches) else None,
                first_match_tid=ex.tracklet_row(first)["tid"] if first is not None else None,
                first_match_similarity=first_sim,
                top_impostor_tid=ex.tracklet_row(impostor)["tid"] if impostor is not None else None,
                top_impostor_similarity=impostor_sim,
                margin=impostor_sim - first_sim if first_sim is not None and impostor_sim is not None else None,
                gallery_size=int(len(ranked))))
        return out


__all__ = ["FailureAnalysis", "StageRank"]
