"""Synthetic multi-person scenes with known boxes: person clips pasted on a wide textured background.

Used to test detection end to end (and to make demo/browser-test videos): each
:class:`Walker` is a person clip (e.g. a SynthVVI tracklet, 128x64 frames)
moving at a constant speed over a static camera's background; the returned
boxes are where each clip was pasted, frame by frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from lsmrl.data.people.records import Box
from lsmrl.errors import VideoError


@dataclass(frozen=True)
class Walker:
    """A person clip (T', h, w, 3) pasted with its top-left at ``start`` + t * ``velocity`` in frames
    ``first_frame`` .. ``last_frame`` (inclusive; None: to the end). The clip plays forwards and
    backwards when the scene is longer than it."""

    clip: np.ndarray
    start: tuple[int, int]
    velocity: tuple[int, int] = (0, 0)
    first_frame: int = 0
    last_frame: int | None = None


def textured_background(height: int, width: int, seed: int = 0, cell: int = 12) -> np.ndarray:
    """Smooth random colour blobs (``cell`` px) with fine grain: clutter for HOG, static for MOG2."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 220, (height // cell + 1, width // cell + 1, 3)).astype(np.uint8)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    return np.clip(smooth + rng.integers(-12, 13, (height, width, 3)), 0, 255).astype(np.uint8)


def compose_scene(
    walkers: list[Walker], num_frames: int = 16, size: tuple[int, int] = (192, 400), seed: int = 0
) -> tuple[np.ndarray, list[dict[int, Box]]]:
    """The scene (num_frames, H, W, 3) uint8 and, per walker, {frame index: pasted box (x0, y0, x1, y1)}."""
    height, width = size
    background = textured_background(height, width, seed)
    frames = np.repeat(background[None], num_frames, axis=0)
    truth: list[dict[int, Box]] = []
    for walker in walkers:
        clip = np.asarray(walker.clip)
        clip_h, clip_w = clip.shape[1:3]
        last = num_frames - 1 if walker.last_frame is None else walker.last_frame
        boxes: dict[int, Box] = {}
        for t in range(walker.first_frame, last + 1):
            x0 = walker.start[0] + walker.velocity[0] * t
            y0 = walker.start[1] + walker.velocity[1] * t
            if x0 < 0 or y0 < 0 or x0 + clip_w > width or y0 + clip_h > height:
                raise VideoError(f"walker leaves the {width}x{height} scene at frame {t}: shorten its path")
            period = max(1, 2 * len(clip) - 2)
            step = t % period
            frames[t, y0 : y0 + clip_h, x0 : x0 + clip_w] = clip[step if step < len(clip) else period - step]
            boxes[t] = (x0, y0, x0 + clip_w, y0 + clip_h)
        truth.append(boxes)
    return frames, truth
