"""Analysis of a trained LSMRL model: failure cases, modality gap, UMAP, semantic diffusion, attention.

The app uses :class:`Explorer` (``lsmrl.analysis.explorer``); the building
blocks are plain functions on numpy arrays and per-query records:

=====================  ==========================================================
module                 what
=====================  ==========================================================
``cache``              on-disk cache keyed by checkpoint hash + data fingerprint
``modality_gap``       per-stage gap metrics (centroids, cross-modal similarity, probe)
``embedding``          seeded per-stage UMAP layouts, Procrustes-aligned
``diffusion``          identity-prompt similarity before/after SD, SD attention, probes
``failures``           worst queries, impostors, failure rates by camera/attribute
``compare``            two checkpoints on the same queries
``attention``          per-frame Grad-CAM and attention rollout (torch)
``explorer``           the facade: :class:`Explorer`
=====================  ==========================================================

The analyses return numbers, arrays and records; :mod:`lsmrl.viz` draws them
(plotly figures, tracklet strips, explanation-map overlays).

Importing this package is light: names are resolved on first use (PEP 562), so
``import lsmrl.analysis`` imports neither torch, plotly nor umap; ``umap`` is
imported only when a layout is actually fitted.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    # explorer
    "Explorer": "explorer",
    "ModelBundle": "explorer",
    "ANALYSIS_VERSION": "explorer",
    "data_cache_key": "explorer",
    # cache
    "AnalysisCache": "cache",
    "CacheKey": "cache",
    "configure_numba_cache": "cache",
    "key_belongs": "cache",
    "stored_key": "cache",
    # modality gap
    "gap_metrics": "modality_gap",
    "gap_columns": "modality_gap",
    "stage_gap": "modality_gap",
    "probe_accuracy": "modality_gap",
    "STAGE_LABELS": "modality_gap",
    # embedding
    "UMAPParams": "embedding",
    "align_procrustes": "embedding",
    "fit_umap": "embedding",
    "umap_layouts": "embedding",
    "point_meta": "embedding",
    # diffusion
    "DiffusionResult": "diffusion",
    "TrackletDiffusion": "diffusion",
    "ProbeRow": "diffusion",
    "tracklet_diffusion": "diffusion",
    "cross_modal_shift": "diffusion",
    "attribute_probe_table": "diffusion",
    "probe_summary": "diffusion",
    "probe_text_features": "diffusion",
    "prompt_identities": "diffusion",
    # failures
    "QueryOutcome": "failures",
    "RankedItem": "failures",
    "ImpostorReport": "failures",
    "FailureStatistics": "failure_stats",
    "normalise_records": "failures",
    "worst_queries": "failures",
    "find_impostors": "failures",
    "failure_statistics": "failure_stats",
    "attribute_differences": "failures",
    "flatten_attributes": "failures",
    "describe_attributes": "failures",
    "similarity_histogram": "failure_stats",
    # compare
    "Comparison": "compare",
    "QueryChange": "compare",
    "compare_records": "compare",
    "compare_all": "compare",
    # attention
    "AttentionMaps": "attention",
    "EmbeddingSimilarityTarget": "attention",
    "PromptTarget": "attention",
    "gradcam_maps": "attention",
    "attention_rollout": "attention",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lsmrl.analysis' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"lsmrl.analysis.{module}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from lsmrl.analysis.attention import (
        AttentionMaps,
        EmbeddingSimilarityTarget,
        PromptTarget,
        attention_rollout,
        gradcam_maps,
    )
    from lsmrl.analysis.cache import AnalysisCache, CacheKey, configure_numba_cache, key_belongs, stored_key
    from lsmrl.analysis.compare import Comparison, QueryChange, compare_all, compare_records
    from lsmrl.analysis.diffusion import (
        DiffusionResult,
        ProbeRow,
        TrackletDiffusion,
        attribute_probe_table,
        cross_modal_shift,
        probe_summary,
        probe_text_features,
        prompt_identities,
        tracklet_diffusion,
    )
    from lsmrl.analysis.embedding import UMAPParams, align_procrustes, fit_umap, point_meta, umap_layouts
    from lsmrl.analysis.explorer import ANALYSIS_VERSION, Explorer, ModelBundle, data_cache_key
    from lsmrl.analysis.failure_stats import FailureStatistics, failure_statistics, similarity_histogram
    from lsmrl.analysis.failures import (
        ImpostorReport,
        QueryOutcome,
        RankedItem,
        attribute_differences,
        describe_attributes,
        find_impostors,
        flatten_attributes,
        normalise_records,
        worst_queries,
    )
    from lsmrl.analysis.modality_gap import STAGE_LABELS, gap_columns, gap_metrics, probe_accuracy, stage_gap
