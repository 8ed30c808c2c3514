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

import contextlib
import contextvars
import copy
import threading
from dataclasses import dataclass, field

import torch
from torch import nn

from lsmrl.model.attention import use_sdpa
from lsmrl.model.fused import FusedMLP

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


def token_shift_index(num_frames: int, offsets: torch.Tensor, inverse: bool = False,
                      edges: str = "swap") -> torch.Tensor:
    """Flat gather index (T * (1+N),) over a tracklet's tokens, frame-major with the class token first in each
    frame: the class tokens stay where they are, patch tokens move as :func:`temporal_shift` moves them."""
    offsets = torch.cat([offsets.new_zeros(1), offsets])  # offset 0: the class token never moves
    sign = -1 if inverse and edges == "cyclic" else 1  # a pairwise exchange undoes itself
    index = temporal_shift_index(num_frames, sign * offsets, edges)  # (T, 1+N): source frame of each token
    length = offsets.shape[0]
    return (index * length + torch.arange(length, device=offsets.device)).reshape(-1)


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


_BF16_WEIGHTS: contextvars.ContextVar[bool] = contextvars.ContextVar("lsmrl_stfl_bf16_weights", default=False)
_BF16_BUILD_LOCK = threading.Lock()


@contextlib.contextmanager
def bf16_weights():
    """Within this context (this thread or task only), gradient-free STFL forwards run a bf16 copy of the tower.

    Autocast keeps fp32 weights and casts every weight and activation at every matmul; a tower whose
    weights are bf16 once (:meth:`STFL.bf16_tower`) runs its matmuls, attention and element-wise ops on bf16
    tensors with no casts in between. Forwards that record gradients (training, Grad-CAM) are unaffected.
    """
    token = _BF16_WEIGHTS.set(True)
    try:
        yield
    finally:
        _BF16_WEIGHTS.reset(token)


def bf16_copy(visual: nn.Module) -> nn.Module:
    """A bf16 inference copy of an open_clip vision tower: weights and buffers in bf16, except the layer norms'
    scale and shift, which stay fp32 (``F.layer_norm`` takes bf16 input with fp32 affine parameters and
    normalises in fp32 either way), and each block's GELU MLP a :class:`lsmrl.model.fused.FusedMLP` (bias and GELU
    fused into oneDNN's matmul). No gradients, no hooks (hooks belong to the original's callers); the fp32
    original is never copied whole, so the copy costs the bf16 weights' memory only."""
    memo: dict[int, object] = {}
    norms = {id(p) for m in visual.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters(recurse=False)}
    for parameter in visual.parameters():
        dtype = torch.float32 if id(parameter) in norms else torch.bfloat16
        memo[id(parameter)] = nn.Parameter(parameter.detach().to(dtype, copy=True), requires_grad=False)
    for buffer in visual.buffers():
        memo[id(buffer)] = buffer.detach().to(torch.bfloat16 if buffer.is_floating_point() else buffer.dtype,
                                              copy=True)
    tower = copy.deepcopy(visual, memo)
    for module in tower.modules():
        module._forward_hooks.clear()
        module._forward_pre_hooks.clear()
    for block in tower.transformer.resblocks:
        fused = FusedMLP.from_sequential(block.mlp)
        if fused is not None:
            block.mlp = fused
    return tower.eval()


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
        use_sdpa(visual.transformer)  # fused attention; same parameters (lsmrl.model.attention)
        self._bf16_cache: tuple = ()  # (weights key, bf16 tower): a plain attribute, not a submodule

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

    def bf16_tower(self) -> nn.Module:
        """The tower's bf16 inference copy (:func:`bf16_copy`), built on first use and rebuilt whenever a weight
        changed since (an optimiser step or ``load_state_dict`` bumps a parameter's version counter; ``.to()``
        moves its storage)."""
        key = tuple((p.data_ptr(), p._version) for p in self.visual.parameters())
        cached = self._bf16_cache
        if cached and cached[0] == key:
            return cached[1]
        with _BF16_BUILD_LOCK:
            cached = self._bf16_cache
            if not (cached and cached[0] == key):
                with torch.inference_mode(False), torch.no_grad():  # plain tensors, usable in any mode
                    self._bf16_cache = (key, bf16_copy(self.visual))
            return self._bf16_cache[1]

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """``frames`` (B, T, 3, H, W) -> ``frame_features`` (B, T, D) and ``sequence`` (B, D).

        Inside :func:`bf16_weights` and without gradients the tower's bf16 copy runs (autocast off inside,
        bf16 outputs); otherwise the tower itself, under whatever autocast the caller set.
        """
        if _BF16_WEIGHTS.get() and not torch.is_grad_enabled():
            with torch.autocast(frames.device.type, enabled=False):
                return self._run(self.bf16_tower(), frames.to(torch.bfloat16))
        return self._run(self.visual, frames)

    def _run(self, visual: nn.Module, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        batch, num_frames = frames.shape[:2]
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
        """One temporal-patch-shift block on ``x`` (B, T, L, C): shift, run, shift back.

        Both shifts are one ``index_select`` over the tracklet's T * L tokens (:func:`token_shift_index`: the
        class tokens stay, patch tokens move as :func:`temporal_shift` moves them), the same permutation as
        splitting off the class tokens, shifting the patches and concatenating, without those copies.
        """
        batch, num_frames, length, channels = x.shape
        edges = self.config.shift_edges
        forward = token_shift_index(num_frames, self.offsets, edges=edges)
        inverse = token_shift_index(num_frames, self.offsets, inverse=True, edges=edges)
        shifted = x.reshape(batch, num_frames * length, channels).index_select(1, forward)
        out = block(shifted.view(batch * num_frames, length, channels))
        return out.view(batch, num_frames * length, channels).index_select(1, inverse).view(x.shape)
