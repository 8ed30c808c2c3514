"""Attention rollout through STFL's basic, grouped and shift blocks (gradient-free, target-free).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lsmrl.analysis.attention.maps import (
    HEAD_FUSIONS,
    AttentionMaps,
    _frames_tensor,
    _grid,
    _HookRecorder,
    _upsample_and_normalise,
    token_frame_index,
)


def attention_weights(attn: nn.MultiheadAttention, x: torch.Tensor) -> torch.Tensor:
    """Per-head attention weights ``softmax(Q K^T / sqrt(d))`` (n, heads, K, K) of a self-attention on ``x``.

    open_clip calls ``nn.MultiheadAttention`` with ``need_weights=False``, so the
    weights are recomputed from the block's ``ln_1`` output (``x``, batch-first)
    and ``attn.in_proj_weight/bias``. No attention mask (the vision tower has none).
    """
    if getattr(attn, "in_proj_weight", None) is None:
        raise TypeError("attention rollout needs an nn.MultiheadAttention with a packed in_proj_weight")
    if not getattr(attn, "batch_first", False):
        x = x.transpose(0, 1)
    items, tokens, channels = x.shape
    heads = attn.num_heads
    head_dim = channels // heads
    q, k, _ = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    q = q.reshape(items, tokens, heads, head_dim).transpose(1, 2)
    k = k.reshape(items, tokens, heads, head_dim).transpose(1, 2)
    return torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(head_dim), dim=-1)


def _fuse_heads(weights: torch.Tensor, head_fusion: str) -> torch.Tensor:
    if head_fusion == "mean":
        return weights.mean(dim=1)
    if head_fusion == "max":
        return weights.amax(dim=1)
    if head_fusion == "min":
        return weights.amin(dim=1)
    raise ValueError(f"head_fusion must be one of {HEAD_FUSIONS}, got {head_fusion!r}")


def _discard(fused: torch.Tensor, ratio: float) -> torch.Tensor:
    """Zero the lowest ``ratio`` of each attention matrix's entries, never the diagonal (as vit-explain keeps cls->cls)."""
    if ratio <= 0:
        return fused
    items, tokens, _ = fused.shape
    count = min(int(tokens * tokens * ratio), tokens * tokens - tokens)
    if count == 0:
        return fused
    flat = fused.reshape(items, -1).clone()
    diagonal = torch.arange(tokens) * (tokens + 1)
    protected = flat.clone()
    protected[:, diagonal] = float("inf")
    lowest = protected.topk(count, dim=-1, largest=False).indices
    flat.scatter_(1, lowest, 0.0)
    return flat.reshape(items, tokens, tokens)


def rollout_matrix(model, frames, head_fusion: str = "mean", discard_ratio: float = 0.0,
                   rows: Sequence[int] | torch.Tensor | None = None) -> torch.Tensor:
    """Rolled-out attention over the tracklet's joint tokens: ``rows`` of ``Â_L ... Â_1`` ((T*(1+N))^2 if None).

    Token ``t * (1+N) + i`` is position ``i`` (0 = class token) of frame ``t``.
    Each block's attention (heads fused, lowest ``discard_ratio`` dropped) is
    placed in the joint space (see the module docstring), then
    ``Â = (A + I) / row sum`` (Abnar & Zuidema 2020). Every row sums to 1.
    """
    if not 0.0 <= discard_ratio < 1.0:
        raise ValueError(f"discard_ratio must be in [0, 1), got {discard_ratio}")
    if head_fusion not in HEAD_FUSIONS:
        raise ValueError(f"head_fusion must be one of {HEAD_FUSIONS}, got {head_fusion!r}")
    frames = _frames_tensor(frames)
    num_frames = frames.shape[0]
    height, width = _grid(model)
    length = 1 + height * width
    total = num_frames * length
    blocks = list(model.clip.visual.transformer.resblocks)
    kinds = model.stfl.block_kinds()
    parameter = next(model.parameters())
    recorder = _HookRecorder([block.ln_1 for block in blocks])
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model.stfl(frames.to(device=parameter.device, dtype=parameter.dtype)[None])
    finally:
        recorder.remove()
        model.train(was_training)
    identity = torch.eye(total)
    result = identity if rows is None else identity[torch.as_tensor(rows, dtype=torch.long)]
    offsets = model.stfl.offsets
    with torch.no_grad():
        for block, kind, chunks in reversed(list(zip(blocks, kinds, recorder.outputs))):
            joint = torch.zeros(total, total)
            shapes = [tuple(chunk.shape[:2]) for chunk in chunks]
            for chunk, index in zip(chunks, token_frame_index(shapes, kind, num_frames, length, offsets)):
                fused = _discard(_fuse_heads(attention_weights(block.attn, chunk).float().cpu(), head_fusion),
                                 discard_ratio)
                for item in range(fused.shape[0]):
                    joint[index[item][:, None], index[item][None, :]] = fused[item]
            joint = joint + identity
            joint = joint / joint.sum(dim=-1, keepdim=True)
            result = result @ joint  # rows of Â_L ... Â_1, accumulated from the last block down
    return result


def attention_rollout(model, frames, modality=None, head_fusion: str = "mean",
                      discard_ratio: float = 0.0) -> AttentionMaps:
    """Attention rollout (Abnar & Zuidema 2020) of one tracklet, mapped to its frames.

    ``raw[t]`` is the relevance of frame ``t``'s patches for the tracklet feature:
    the mean over frames of the class-token rows of :func:`rollout_matrix`
    (the feature is the mean of the frames' class tokens). Gradient-free and
    target-free; ``modality`` is accepted for symmetry with :func:`gradcam_maps`
    but unused (only the visual tower, which is modality-agnostic, is run).
    """
    frames = _frames_tensor(frames)
    num_frames, _, height, width = frames.shape
    grid = _grid(model)
    length = 1 + grid[0] * grid[1]
    class_rows = torch.arange(num_frames) * length
    matrix = rollout_matrix(model, frames, head_fusion, discard_ratio, rows=class_rows)
    relevance = matrix.mean(dim=0).reshape(num_frames, length)[:, 1:]
    raw = relevance.reshape(num_frames, *grid).numpy().astype(np.float32)
    maps, contribution = _upsample_and_normalise(raw, (height, width))
    return AttentionMaps(maps=maps, raw=raw, frame_contribution=contribution, method="rollout",
                         target=f"tracklet feature (mean of class tokens), heads {head_fusion}, "
                                f"discard {discard_ratio:g}",
                         extras={"head_fusion": head_fusion, "discard_ratio": discard_ratio})
