"""The modality gap stage by stage: gap metrics and the per-stage UMAP layouts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from lsmrl.analysis.embedding import point_meta, umap_cache_key, umap_layouts
from lsmrl.analysis.modality_gap import BASELINE_FEATURE, gap_metrics
from lsmrl.data.tracklet import INFRARED_TO_VISIBLE
from lsmrl.errors import LSMRLError

if TYPE_CHECKING:  # pragma: no cover
    from lsmrl.analysis.explorer import Explorer, ProgressFn


@dataclass(frozen=True)
class UMAPView:
    """What one UMAP picture shows: a stage's layout, the query (a row of ``coords``), its ranked matches and
    whether each is a true match (None: not known)."""

    coords: np.ndarray
    meta: dict[str, list]
    stage: str
    query_row: int | None = None
    match_rows: list[int] = field(default_factory=list)
    match_correct: list[bool] | None = None


#: Part of the gap table's cache key: bump when :func:`gap_metrics` adds or changes a column.
GAP_TABLE_VERSION = 2


class GapAnalysis:
    """``explorer.gap``: one row of gap metrics per stage and the aligned 2-D layouts (both cached).

    Both cache keys name which of the baseline's features is its stage
    (:data:`~lsmrl.analysis.modality_gap.BASELINE_FEATURE`), so a cache written with another choice is never
    read back."""

    def __init__(self, explorer: "Explorer"):
        self.explorer = explorer

    def _features_key(self):
        return self.explorer.cache_key("features", baseline_feature=BASELINE_FEATURE)

    def table(self) -> list[dict]:
        """One row per stage (see :func:`lsmrl.analysis.modality_gap.gap_metrics`); cached."""
        ex = self.explorer

        def compute() -> list[dict]:
            return gap_metrics(ex.stage_features(), ex.main.features["pids"], ex.main.features["modalities"],
                               ex.dataset)

        return ex.lazy("gap", lambda: ex.cache.get_or_compute(
            ex.cache_key("gap_table", baseline_feature=BASELINE_FEATURE, version=GAP_TABLE_VERSION), compute))

    def layouts(self, progress: "ProgressFn | None" = None) -> dict[str, np.ndarray]:
        """All stages' aligned 2-D layouts (cached; the first call may fit UMAP: ~20 s cold on 2 cores)."""
        ex = self.explorer
        return ex.lazy("umap", lambda: umap_layouts(ex.stage_features(), ex.umap_params, ex.cache,
                                                    self._features_key(), progress))

    def cached(self) -> bool:
        """Whether :meth:`umap` will be served without fitting UMAP (from memory or the disk cache)."""
        ex = self.explorer
        return ex.memoised("umap") or ex.cache.contains(
            umap_cache_key(self._features_key(), ex.stages, ex.umap_params))

    def umap(self, stage: str) -> tuple[np.ndarray, dict[str, list]]:
        """``(coords (N, 2), meta)`` of ``stage``; row i is ``dataset.test[i]`` (meta: test_index, tid, pid, camid,
        modality)."""
        ex = self.explorer
        if stage not in ex.stages:
            raise LSMRLError(f"unknown stage {stage!r}; have {ex.stages}")
        return self.layouts()[stage], point_meta(ex.dataset)

    def view(self, stage: str, query: str | int | None = None, direction: str = INFRARED_TO_VISIBLE,
             top_k: int = 5) -> UMAPView:
        """The stage's UMAP layout with the query and its top-k matches marked (drawn by
        :func:`lsmrl.viz.figures.umap_view_figure`)."""
        coords, meta = self.umap(stage)
        if query is None:
            return UMAPView(coords, meta, stage)
        result = self.explorer.retrieve(query, direction, top_k)
        return UMAPView(coords, meta, stage, result["query"]["test_index"],
                        [item["test_index"] for item in result["items"]],
                        [item["is_match"] for item in result["items"]])

__all__ = ["GAP_TABLE_VERSION", "GapAnalysis", "UMAPView"]
