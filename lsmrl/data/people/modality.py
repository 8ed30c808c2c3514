"""Does a clip look like the modality it was declared as? Infrared footage is grey (R = G = B), visible is colour."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from lsmrl.data.tracklet import INFRARED, MODALITIES, VISIBLE
from lsmrl.errors import VideoError


@dataclass(frozen=True)
class ChannelSpread:
    """How far the colour channels of a clip differ, per pixel (max - min of R, G, B)."""

    p99: float
    coloured_fraction: float


def channel_spread(frames: np.ndarray, max_frames: int = 8, max_side: int = 160, coloured_level: int = 20) -> ChannelSpread:
    """Spread statistics over up to ``max_frames`` evenly spaced frames, downsized to ``max_side`` (cheap)."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise VideoError(f"expected frames as a (T, H, W, 3) array, got shape {frames.shape}")
    picks = np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round().astype(int))
    spreads = []
    for i in picks:
        frame = frames[i]
        factor = max_side / max(frame.shape[:2])
        if factor < 1:
            # Nearest neighbour: averaging would blend chroma noise away and neighbouring colours together.
            frame = cv2.resize(frame, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)
        pixels = frame.reshape(-1, 3).astype(np.int16)
        spreads.append(pixels.max(axis=1) - pixels.min(axis=1))
    spread = np.concatenate(spreads)
    return ChannelSpread(p99=float(np.percentile(spread, 99)), coloured_fraction=float((spread > coloured_level).mean()))


def check_declared_modality(
    frames: np.ndarray, declared: str, grey_p99: float = 12.0, colour_fraction: float = 0.02
) -> str | None:
    """A warning sentence when the clip contradicts ``declared`` ("visible" or "infrared"), else None.

    Grey: 99 % of pixels have channels within ``grey_p99`` levels (JPEG and
    H.264 chroma noise stay under about 6). Colour: more than ``colour_fraction``
    of pixels have channels more than 20 levels apart. A clip that is neither
    (faintly tinted) gets no warning: a thermal camera's slight tint or a dim
    colour scene is not evidence enough.
    """
    if declared not in MODALITIES:
        raise VideoError(f"the declared modality must be one of {', '.join(MODALITIES)}, not {declared!r}")
    spread = channel_spread(frames)
    is_grey = spread.p99 <= grey_p99
    is_colour = spread.coloured_fraction > colour_fraction
    percent = 100 * spread.coloured_fraction
    if declared == INFRARED and is_colour:
        return (
            f"This video is in colour ({percent:.0f}% of pixels have clearly different R, G, B) but was declared "
            "infrared: infrared cameras record grey images. Declare it visible, or, if it is a thermal video "
            "shown with a false-colour palette, convert it to greyscale first; the ranking below assumes infrared."
        )
    if declared == VISIBLE and is_grey:
        return (
            "This video is greyscale (R = G = B in 99% of pixels) but was declared visible: it looks like "
            "infrared footage. Declare it infrared unless it comes from a black-and-white visible camera; "
            "the ranking below assumes visible."
        )
    return None
