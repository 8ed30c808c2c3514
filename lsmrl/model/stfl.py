"""STFL: spatial-temporal feature learning (LSMRL paper, Sec. 3.2 "STFL"; design.md §6).

CLIP's ViT blocks are split, with *no new parameters*, into three consecutive groups:

1. **basic vision encoder** (blocks ``[0, grouped_start)``): plain CLIP blocks,
   each frame on its own;
2. **spatial-temporal grouped encoder** (blocks ``[grouped_start, shift_start)``):
   the tokens (class + patches) of ``group_size`` consecutive frames are
   concatenated and attend jointly in one attention; weights are CLIP's, only
   these blocks pay ``group_size`` x the per-frame attention FLOPs;
3. **temporal patch shift encoder** (blocks ``[shift_start, layers)``): before
   each block a mosaic of patch tokens is cyclically shifted along time by a
   per-position offset in {-1, 0, +1} (Temporal Patch Shift, Xiang et al.
   ECCV 2022), so that spatial attention mixes neighbouring frames at the cost
   of 2-D attention; the shift is undone after the block. Class tokens are not
   shifted. The shift is a permutation: nothing is lost.

   **Tracklet ends** (``shift_edges``): TPS shifts cyclically, which puts the
   last frame's patches into the first frame. ``"swap"`` (the
   default) never wraps: at positions with offset +1, frames exchange patches
   in pairs (0,1), (2,3), ...; with offset -1 in pairs (1,2), (3,4), ...; a
   frame without a partner keeps its own patch. Each frame so reads both
   neighbours across the mosaic, only ever its direct neighbours, and the
   exchange is its own inverse. ``"cyclic"`` keeps TPS's wrap (checkpoints
   trained with it).

No attention ever runs over all T x N tokens of a tracklet. The sequence
feature is the mean of the frames' projected class tokens (the BNNeck follows
in :mod:`lsmrl.model.lsmrl`).

Paper-silent choices [our choice], all in :class:`STFLConfig`: the split points
(ViT-B/16: 8 basic, 2 grouped, 2 shift; miniature: 3, 1, 2), the group size
(2), the mosaic tile of offsets, pairwise exchange (no wrap) at the tracklet ends.
With ``grouped=False`` and ``shift=False`` every block runs per frame and the
frame features equal open_clip's visual tower exactly (tested).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

DEFAULT_SHIFT_TILE = ((-1, 0, 1), (0, 1, -1), (1, -1, 0))  # a diagonal mosaic: 1/3 of patches each way


@dataclass
class STFLConfig:
    grouped: bool = True
    shift: bool = True
    grouped_start: int | None = None  # None: 2/3 of the blocks are basic (8 of 12, 4 of 6)
    shift_start: int | None = None  # None: the last 1/6 (at least 1) of the blocks shift
    group_size: int = 2
    shift_tile: tuple[tuple[int, ...], ...] = field(default=DEFAULT_SHIFT_TILE)
    shift_edges: str = "swap"  # "swap": pairwise exchange, never across the tracklet's ends; "cyclic": TPS's wrap

    def split(self, layers: int) -> tuple[int, int]:
        """Block indices where the grouped and the shift encoders start.

        Defaults (design.md §6): the last 2 blocks shift; the 2 before them
        (1 for fewer than 12 blocks) are grouped; the rest are basic.
        """
        shift_start = self.shift_start if self.shift_start is not None else max(0, layers - 2)
        grouped_start = (self.grouped_start if self.grouped_start is not None
                         else max(0, shift_start - (2 if layers >= 12 else 1)))
        if not 0 <= grouped_start <= shift_start <= layers:
            raise ValueError(
                f"STFL split must satisfy 0 <= grouped_start ({grouped_start}) <= shift_start "
                f"({shift_start}) <= layers ({layers})"
            )
        return grouped_start, shift_start


def shift_offsets(grid: tuple[int, int], tile) -> torch.Tensor:
    """Temporal offset of each patch position (h*w,), tiling ``tile`` over the grid."""
    tile = torch.as_tensor(tile, dtype=torch.long)
    rows = torch.arange(grid[0]) % tile.shape[0]
    cols = torch.arange(grid[1]) % tile.shape[1]
    return tile[rows[:, None], cols[None, :]].reshape(-1)


SHIFT_EDGES = ("swap", "cyclic")


def temporal_shift_index(num_frames: int, offsets: torch.Tensor, edges: str = "swap") -> torch.Tensor:
    """Gather index (T, N): ``shifted[t, p] = x[index[t, p], p]``.

    ``"cyclic"``: ``index[t, p] = (t + offsets[p]) % T``. ``"swap"``: at an offset +1 position, frame ``t``
    exchanges with ``t ^ 1`` (pairs (0,1), (2,3), ...); at -1 with its partner in the pairs (1,2), (3,4), ...;
    a partner outside the tracklet means no exchange. Either is a permutation of the (frame, patch) pairs:
    every token lands exactly once; ``"swap"`` is its own inverse.
    """
    if edges not in SHIFT_EDGES:
        raise ValueError(f"shift_edges must be one of {SHIFT_EDGES}, got {edges!r}")
    frames = torch.arange(num_frames)[:, None]
    if edges == "cyclic":
        return (frames + offsets[None, :]) % num_frames
    phase = (offsets[None, :] < 0).long()  # pairs start at even frames (+1) or at odd frames (-1)
    partner = ((frames - phase) ^ 1) + phase
    valid = (offsets[None, :] != 0) & (frames >= phase) & (partner >= 0) & (partner < num_frames)
    return torch.where(valid, partner, frames.expand(-1, offsets.shape[0]))


def temporal_shift(patches: torch.Tensor, offsets: torch.Tensor, inverse: bool = False,
                   edges: str = "swap") -> torch.Tensor:
    """Shift patch tokens (B, T, N, C) along time by per-position offsets; ``inverse`` undoes it."""
    batch, num_frames, num_patches, channels = patches.shape
    sign = -1 if inverse and edges == "cyclic" else 1  # a pairwise exchange undoes itself
    index = temporal_shift_index(num_frames, sign * offsets.to(patches.device), edges)
    index = index.to(patches.device)[None, :, :, None].expand(batch, -1, -1, channels)
    return torch.gather(patches, 1, index)


def run_grouped(block: nn.Module, x: torch.Tensor, group_size: int) -> torch.Tensor:
    """Run ``block`` with the tokens of ``group_size`` consecutive frames attending jointly.

    ``x``: (B, T, L, C). A last, shorter group (T not divisible) runs on its own.
    """
    batch, num_frames, length, channels = x.shape
    outputs = []
    full = num_frames // group_size * group_size
    if full:
        grouped = x[:, :full].reshape(batch * (full // group_size), group_size * length, channels)
        outputs.append(block(grouped).reshape(batch, full, length, channels))
    if full < num_frames:
        rest = num_frames - full
        tail = x[:, full:].reshape(batch, rest * length, channels)
        outputs.append(block(tail).reshape(batch, rest, length, channels))
    return torch.cat(outputs, dim=1) if len(outputs) > 1 else outputs[0]


class STFL(nn.Module):
    """STFL over an open_clip ``VisionTransformer`` (its weights are used, not copied)."""

    def __init__(self, visual: nn.Module, config: STFLConfig):
        super().__init__()
        # Not registered as a submodule: the tower belongs to the CLIP model, and
        # registering it twice would duplicate every weight in state dicts.
        self._visual = (visual,)
        self.config = config
        layers = len(visual.transformer.resblocks)
        self.grouped_start, self.shift_start = config.split(layers)
        self.grid = tuple(visual.grid_size)
        self.register_buffer("offsets", shift_offsets(self.grid, config.shift_tile), persistent=False)

    @property
    def visual(self) -> nn.Module:
        return self._visual[0]

    def block_kinds(self) -> list[str]:
        """"basic", "grouped" or "shift" for every block, as the switches make them run."""
        kinds = []
        for index in range(len(self.visual.transformer.resblocks)):
            if index >= self.shift_start and self.config.shift:
                kinds.append("shift")
            elif self.grouped_start <= index < self.shift_start and self.config.grouped:
                kinds.append("grouped")
            else:  # a switched-off encoder's blocks run as plain per-frame CLIP blocks
                kinds.append("basic")
        return kinds

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """``frames`` (B, T, 3, H, W) -> ``frame_features`` (B, T, D) and ``sequence`` (B, D)."""
        batch, num_frames = frames.shape[:2]
        visual = self.visual
        x = visual._embeds(frames.flatten(0, 1))  # (B*T, 1+N, C), ln_pre applied
        length, channels = x.shape[1:]
        for block, kind in zip(visual.transformer.resblocks, self.block_kinds()):
            if kind == "basic":
                x = block(x)
            elif kind == "grouped":
                x = run_grouped(block, x.reshape(batch, num_frames, length, channels), self.config.group_size)
                x = x.reshape(batch * num_frames, length, channels)
            else:
                x = self._shift_block(block, x.reshape(batch, num_frames, length, channels))
                x = x.reshape(batch * num_frames, length, channels)
        pooled, _ = visual._pool(x)
        if visual.proj is not None:
            pooled = pooled @ visual.proj
        frame_features = pooled.reshape(batch, num_frames, -1)
        return {"frame_features": frame_features, "sequence": frame_features.mean(dim=1)}

    def _shift_block(self, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        batch, num_frames, length, channels = x.shape
        cls, patches = x[:, :, :1], x[:, :, 1:]
        edges = self.config.shift_edges
        shifted = torch.cat([cls, temporal_shift(patches, self.offsets, edges=edges)], dim=2)
        out = block(shifted.reshape(batch * num_frames, length, channels)).reshape(x.shape)
        return torch.cat([out[:, :, :1], temporal_shift(out[:, :, 1:], self.offsets, inverse=True, edges=edges)],
                         dim=2)
