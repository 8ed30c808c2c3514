"""Does a track show one person all along? Colour histograms of its boxes, a change point, a spread.

Tracking links boxes by position alone, so where two people cross or one blob
holds several people a track can jump from one person to another. Their
clothes usually differ, so the track's colour changes at that point:

- :func:`box_histogram` is the HSV histogram of the middle of a box (the
  body, less the background at its sides), normalised to sum 1.
- :func:`change_points` splits a sequence of histograms by binary
  segmentation: the cut whose mean histograms before and after differ most
  (Bhattacharyya distance) is taken when that distance exceeds a threshold and
  both sides keep ``min_segment`` boxes; then each side is searched again.
- :func:`outlier_fraction` is the share of boxes far from the track's median
  histogram: a track that alternates between two people has no single change
  point but many outliers, and a query from it gets a warning.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

# Hue carries the clothes' colour; few saturation and value bins keep lighting changes along a walk small.
_BINS = (16, 4, 3)
_RANGES = (0, 180, 0, 256, 0, 256)


def box_histogram(frame: np.ndarray, box: Sequence[float], keep: tuple[float, float] = (0.6, 0.8)) -> np.ndarray:
    """HSV histogram (flattened, sums to 1) of the central ``keep`` (width, height) fraction of ``box``.

    ``frame`` is an RGB uint8 (H, W, 3) image; the box is clipped to it. The
    central part is the person's body; the box's sides are mostly background.
    An empty region gives a uniform histogram.
    """
    height, width = frame.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half_w, half_h = (x1 - x0) * keep[0] / 2, (y1 - y0) * keep[1] / 2
    left, right = int(max(0, round(cx - half_w))), int(min(width, round(cx + half_w)))
    top, bottom = int(max(0, round(cy - half_h))), int(min(height, round(cy + half_h)))
    bins = int(np.prod(_BINS))
    if right - left < 2 or bottom - top < 2:
        return np.full(bins, 1.0 / bins, np.float32)
    hsv = cv2.cvtColor(np.ascontiguousarray(frame[top:bottom, left:right]), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, list(_BINS), list(_RANGES)).reshape(-1)
    return (hist / max(float(hist.sum()), 1.0)).astype(np.float32)


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya distance of two normalised histograms: 0 the same, 1 no common bin."""
    return float(cv2.compareHist(np.asarray(a, np.float32), np.asarray(b, np.float32), cv2.HISTCMP_BHATTACHARYYA))


def best_cut(histograms: np.ndarray, min_segment: int) -> tuple[int, float]:
    """The index k that best splits ``histograms`` into [:k] and [k:] (both at least ``min_segment`` long),
    and the distance between the two sides' mean histograms; (0, 0.0) when no cut fits."""
    count = len(histograms)
    if count < 2 * min_segment:
        return 0, 0.0
    cumulative = np.cumsum(histograms, axis=0, dtype=np.float64)
    total = cumulative[-1]
    best, best_distance = 0, 0.0
    for k in range(min_segment, count - min_segment + 1):
        before = cumulative[k - 1] / k
        after = (total - cumulative[k - 1]) / (count - k)
        distance = histogram_distance(before, after)
        if distance > best_distance:
            best, best_distance = k, distance
    return best, best_distance


def change_points(histograms: np.ndarray, threshold: float, min_segment: int) -> list[int]:
    """Sorted indices where the appearance changes (binary segmentation with :func:`best_cut`)."""
    histograms = np.asarray(histograms, np.float32)
    cut, distance = best_cut(histograms, min_segment)
    if cut == 0 or distance <= threshold:
        return []
    left = change_points(histograms[:cut], threshold, min_segment)
    right = change_points(histograms[cut:], threshold, min_segment)
    return left + [cut] + [cut + c for c in right]


def outlier_fraction(histograms: np.ndarray, distance: float) -> float:
    """Share of histograms farther than ``distance`` from the element-wise median histogram."""
    histograms = np.asarray(histograms, np.float32)
    if len(histograms) < 2:
        return 0.0
    median = np.median(histograms, axis=0)
    median = (median / max(float(median.sum()), 1e-9)).astype(np.float32)
    return float(np.mean([histogram_distance(h, median) > distance for h in histograms]))
