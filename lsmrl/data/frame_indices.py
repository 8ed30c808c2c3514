"""Which ``T`` frames of a tracklet are used: :func:`sample_frame_indices` and its modes.

The modes reproduce the official protocols:

``evenly``            test sampling of HITSZ-VCM (MITML ``video_test``): cut the
                      tracklet into ``T`` chunks of ``ceil(n / T)`` frames (the
                      last one padded with the last frame) and take the first
                      frame of each, i.e. ``min(i * ceil(n / T), n - 1)``.
``uniform``           test sampling of BUPTCampus (``np.linspace(0, n, T,
                      endpoint=False)``, truncated to int).
``restricted_random`` training (MITML ``video_train``): the same chunks as
                      ``evenly``, one random frame from each; needs ``rng``.
``consecutive``       ``T`` consecutive frames from a random start (``rng``) or
                      from the centre of the tracklet (no ``rng``).
``all``               every frame, in order (``num_samples`` is ignored).

When a tracklet has fewer than ``T`` frames, ``evenly``, ``restricted_random``
and ``consecutive`` repeat frames in temporal order (``floor(i * n / T)``, e.g.
3 frames, T=6 -> 0 0 1 1 2 2). MITML pads with the last frame instead; the
difference never shows with the official protocol, where tracklets shorter
than 12 frames are dropped and T=6. **[our choice]**

Only the standard library and numpy are imported: :mod:`lsmrl.data.video`
loads this file *by path* in its decoding child process, which must not
import the ``lsmrl`` package (or torch).
"""

from __future__ import annotations

import math

import numpy as np

SAMPLING_MODES = ("evenly", "uniform", "restricted_random", "consecutive", "all")


def _repeat_in_order(num_frames: int, num_samples: int) -> np.ndarray:
    """``floor(i * n / T)``: every frame used, repeated in temporal order (n < T)."""
    return (np.arange(num_samples) * num_frames) // num_samples


def sample_frame_indices(
    num_frames: int,
    num_samples: int,
    mode: str = "evenly",
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Indices (int64, non-decreasing) of the frames to use from a tracklet of ``num_frames``.

    See the module docstring for the modes. ``restricted_random`` needs ``rng``
    (a ``numpy.random.Generator``); ``consecutive`` uses it when given.
    """
    if mode not in SAMPLING_MODES:
        raise ValueError(f"unknown sampling mode {mode!r}; expected one of {SAMPLING_MODES}")
    num_frames = int(num_frames)
    if num_frames < 1:
        raise ValueError(f"a tracklet needs at least 1 frame to sample from, got {num_frames}")
    if mode == "all":
        return np.arange(num_frames, dtype=np.int64)
    num_samples = int(num_samples)
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")

    if mode == "uniform":
        # BUPTCampus dataloader.py: np.linspace(0, n, T, endpoint=False, dtype=int)
        return np.linspace(0, num_frames, num_samples, endpoint=False).astype(np.int64)

    if mode == "consecutive":
        if num_frames < num_samples:
            return _repeat_in_order(num_frames, num_samples).astype(np.int64)
        span = num_frames - num_samples
        start = int(rng.integers(0, span + 1)) if rng is not None else span // 2
        return np.arange(start, start + num_samples, dtype=np.int64)

    if num_frames < num_samples:  # evenly / restricted_random on a short tracklet
        return _repeat_in_order(num_frames, num_samples).astype(np.int64)

    chunk = math.ceil(num_frames / num_samples)
    starts = np.arange(num_samples, dtype=np.int64) * chunk
    if mode == "evenly":
        return np.minimum(starts, num_frames - 1)
    # restricted_random: one random frame of each (padded) chunk, as MITML's video_train
    if rng is None:
        raise ValueError("sampling mode 'restricted_random' needs an rng (numpy.random.Generator)")
    offsets = rng.integers(0, chunk, size=num_samples)
    return np.minimum(starts + offsets, num_frames - 1)
