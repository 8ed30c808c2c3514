"""LSMRL Explorer: video-based visible-infrared person re-identification (LSMRL on CLIP).

The top level stays light (numpy only): import heavier parts from their
subpackages, e.g. ``lsmrl.losses`` (torch) or ``lsmrl.model``.
"""

from lsmrl.evaluation.rank import evaluate_rank

__all__ = ["evaluate_rank"]
