"""Training frames decoded once into RAM, and augmented batch-wise in torch.

Reading a training batch from disk costs a JPEG decode and a resize of every frame, every step, in the main
process (0.55 s of a ~3 s stage-2 step was data loading). SynthVVI's training frames are small: its 500
identities x 4 tracklets x ~24 frames at 64x32 are about 300 MB as uint8 (1.2 GB at 128x64), so they are
decoded and resized **once** (with the same bicubic, antialiased resize as
:class:`lsmrl.data.sampling.FrameTransform`, then rounded to uint8) and every step only indexes, flips,
crops and normalises a batch at once.

:func:`augment_batch` draws, per item, the flip and the crop offset of ``FrameTransform`` (flip with
``flip_prob``, zero padding by ``padding`` pixels then a random crop), applied to all of that item's frames.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from lsmrl.data.sampling import CLIP_MEAN, CLIP_STD, _read_image
from lsmrl.data.tracklet import Tracklet


class FrameBank:
    """Every frame of ``tracklets`` as uint8 tensors ``(F_i, 3, H, W)`` at ``image_size``."""

    def __init__(self, tracklets: Sequence[Tracklet], image_size: tuple[int, int], progress: bool = True):
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.frames: list[torch.Tensor] = []
        for tracklet in tqdm(tracklets, desc="decoding frames into RAM", unit="tracklet", disable=not progress):
            if not tracklet.frames:
                raise ValueError(f"{tracklet.tid}: the frame bank reads frame folders, not video files")
            self.frames.append(resize_uint8(np.stack([_read_image(path) for path in tracklet.frames]),
                                            self.image_size))

    @property
    def nbytes(self) -> int:
        return sum(t.numel() for t in self.frames)

    def __len__(self) -> int:
        return len(self.frames)

    def random_frames(self, indices: Sequence[int], rng: np.random.Generator) -> torch.Tensor:
        """One uniformly drawn frame of each tracklet in ``indices``: ``(B, 3, H, W)`` uint8."""
        return torch.stack([self.frames[i][int(rng.integers(len(self.frames[i])))] for i in indices])


def resize_uint8(frames: np.ndarray, image_size: tuple[int, int]) -> torch.Tensor:
    """``(T, H0, W0, 3)`` uint8 -> ``(T, 3, H, W)`` uint8, resized as FrameTransform resizes (bicubic, antialiased)."""
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    if tuple(video.shape[-2:]) != tuple(image_size):
        video = F.interpolate(video, size=tuple(image_size), mode="bicubic", align_corners=False, antialias=True)
    return (video.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)


def augment_batch(frames: torch.Tensor, generator: torch.Generator, flip_prob: float = 0.5, padding: int = 4,
                  mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD) -> torch.Tensor:
    """``(B, [T,] 3, H, W)`` uint8 -> normalised float32 with a random flip and a random padded crop per item."""
    squeeze = frames.dim() == 4
    video = (frames[:, None] if squeeze else frames).float() / 255.0
    batch, height, width = video.shape[0], video.shape[-2], video.shape[-1]
    flips = torch.rand(batch, generator=generator) < flip_prob
    video = torch.where(flips.view(-1, 1, 1, 1, 1), video.flip(-1), video)
    if padding > 0:
        padded = F.pad(video.flatten(0, 1), (padding, padding, padding, padding)).unflatten(0, video.shape[:2])
        tops = torch.randint(0, 2 * padding + 1, (batch,), generator=generator)
        lefts = torch.randint(0, 2 * padding + 1, (batch,), generator=generator)
        rows = tops.view(-1, 1) + torch.arange(height).view(1, -1)  # (B, H)
        cols = lefts.view(-1, 1) + torch.arange(width).view(1, -1)  # (B, W)
        index = torch.arange(batch).view(-1, 1, 1)
        # (B, T, C, H+2p, W+2p) -> per item its own window: gather rows, then columns
        video = padded.permute(0, 3, 4, 1, 2)[index, rows[:, :, None], cols[:, None, :]].permute(0, 3, 4, 1, 2)
    mean_t = torch.tensor(mean, dtype=video.dtype).view(1, 1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=video.dtype).view(1, 1, 3, 1, 1)
    video = (video - mean_t) / std_t
    return video[:, 0] if squeeze else video
