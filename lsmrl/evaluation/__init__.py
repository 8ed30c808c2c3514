"""Evaluation: distances, ranking metrics (CMC, mAP, mINP) and the VVI-ReID protocols.

Importing this package needs numpy only; torch tensors are accepted wherever
features or distances go in.
"""

from lsmrl.evaluation.distance import compute_distance, cosine_distance, euclidean_distance
from lsmrl.evaluation.protocols import (
    CMC_RANKS,
    DIRECTION_LABELS,
    QueryRecord,
    direction_distmats,
    evaluate_directions,
    format_metrics_table,
    query_records,
)
from lsmrl.evaluation.rank import evaluate_rank, rank_query, top_k_gallery

__all__ = [
    "CMC_RANKS",
    "DIRECTION_LABELS",
    "QueryRecord",
    "compute_distance",
    "cosine_distance",
    "direction_distmats",
    "euclidean_distance",
    "evaluate_directions",
    "evaluate_rank",
    "format_metrics_table",
    "query_records",
    "rank_query",
    "top_k_gallery",
]
