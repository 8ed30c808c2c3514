"""Explanation maps of a tracklet: the maps' record, the similarity targets, STFL's token layouts and the
helpers every method shares (see :mod:`lsmrl.analysis.attention`).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lsmrl.model.stfl import temporal_shift, temporal_shift_index

METHODS = ("gradcam", "rollout", "occlusion")
HEAD_FUSIONS = ("mean", "max", "min")


@dataclass
class AttentionMaps:
    """Per-frame explanation maps of one tracklet.

    ``maps``: float32 (T, H, W) in [0, 1], the raw maps upsampled (bilinear) to
    the frame size and min-max scaled with **one minimum and maximum over the
    whole tracklet** (a frame that mattered little stays dark; for Grad-CAM the
    minimum is the ReLU's 0, rollout's identity floor is removed). ``raw``: float32 (T, h, w) on the
    patch grid, unnormalised (Grad-CAM after ReLU; rollout relevance).
    ``frame_contribution``: float32 (T,), each frame's share of the total raw
    positive mass (sums to 1; uniform if the map is all zero). ``score``: the
    target's value (Grad-CAM: the cosine similarity), else None.
    """

    maps: np.ndarray
    raw: np.ndarray
    frame_contribution: np.ndarray
    method: str
    target: str
    score: float | None = None
    layer: int | None = None
    stage: str | None = None
    weighting: str | None = None  # Grad-CAM: "gradcam" or "hirescam" (CAM_WEIGHTINGS); rollout: None
    block_kind: str | None = None
    extras: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.maps.shape[0])

    @property
    def peak_frame(self) -> int:
        """The frame with the largest share of the map mass."""
        return int(np.argmax(self.frame_contribution))


# --------------------------------------------------------------------------- targets
def _cosine(output: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    output = output.reshape(-1, output.shape[-1]) if output.dim() > 1 else output[None]
    reference = reference.to(device=output.device, dtype=output.dtype)
    similarity = F.cosine_similarity(output, reference[None], dim=-1)
    return similarity.sum() if similarity.numel() > 1 else similarity[0]


def _as_vector(feature, name: str) -> torch.Tensor:
    feature = torch.as_tensor(feature).detach().float()
    if feature.dim() == 2 and feature.shape[0] == 1:
        feature = feature[0]
    if feature.dim() != 1:
        raise ValueError(f"{name} must be one feature (D,) or (1, D), got shape {tuple(feature.shape)}")
    if not torch.isfinite(feature).all() or float(feature.norm()) == 0.0:
        raise ValueError(f"{name} must be finite and non-zero")
    return feature


class EmbeddingSimilarityTarget:
    """pytorch-grad-cam target: cosine similarity of the model output (D,) or (1, D) with a gallery embedding (D,).

    The "embedding similarity" use case of pytorch-grad-cam's README, which the
    1.5.7 package does not ship (anchors.md §6). Use with ``stage="embedding"``
    (the BNNeck output, the retrieval feature), which is its default ``stage``.
    """

    stage = "embedding"

    def __init__(self, gallery_embedding, description: str = "similarity to the gallery item"):
        self.reference = _as_vector(gallery_embedding, "gallery_embedding")
        self.description = description

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        return _cosine(model_output, self.reference)

    def __repr__(self) -> str:
        return f"EmbeddingSimilarityTarget({self.description!r})"


class PromptTarget:
    """pytorch-grad-cam target: cosine similarity with a text feature (D,): an identity prompt or free text.

    Get the feature from ``model.prompt_features(torch.tensor([label]))`` or
    ``model.encode_text([...])``. Compare it with a stage that lives in CLIP's
    joint image-text space: the default ``stage`` is ``"cmi"`` (pre-BNNeck, the
    feature stage 2's image-to-text loss uses); the BNNeck ``embedding`` is not
    aligned with text.
    """

    stage = "cmi"

    def __init__(self, text_feature, description: str = "similarity to the prompt"):
        self.reference = _as_vector(text_feature, "text_feature")
        self.description = description

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        return _cosine(model_output, self.reference)

    def __repr__(self) -> str:
        return f"PromptTarget({self.description!r})"


# --------------------------------------------------------------------------- token layouts
def _check_layout(chunks: Sequence[torch.Tensor], num_frames: int, length: int) -> None:
    total = sum(chunk.shape[0] * chunk.shape[1] for chunk in chunks)
    if total != num_frames * length:
        shapes = [tuple(c.shape) for c in chunks]
        raise ValueError(f"hooked tokens {shapes} do not hold {num_frames} frames of {length} tokens "
                         "(only one tracklet at a time is supported)")


def tokens_to_grid(chunks: Sequence[torch.Tensor], kind: str, num_frames: int, grid: tuple[int, int],
                   offsets: torch.Tensor | None = None) -> torch.Tensor:
    """Hooked token tensors of one block -> frame-major patch grid ``(T, C, h, w)``.

    ``chunks``: the tensors of every call of the hooked module in call order
    (one for basic and shift blocks; two for a grouped block whose last group is
    shorter). ``kind``: ``"basic"``, ``"grouped"`` or ``"shift"``. ``offsets``:
    ``model.stfl.offsets`` (needed for shift blocks). Class tokens are dropped.
    Works for activations and for their gradients alike.
    """
    height, width = (int(v) for v in grid)
    length = 1 + height * width
    _check_layout(chunks, num_frames, length)
    channels = chunks[0].shape[-1]
    if kind in ("basic", "grouped"):
        # run_grouped concatenates the frames of a group frame-major: (n, G*L, C) -> (n*G, L, C)
        tokens = torch.cat([chunk.reshape(-1, length, channels) for chunk in chunks])
        patches = tokens[:, 1:]
    elif kind == "shift":
        if len(chunks) != 1:
            raise ValueError(f"a shift block runs once per tracklet, got {len(chunks)} calls")
        if offsets is None:
            raise ValueError("a shift block needs the STFL offsets (model.stfl.offsets)")
        patches = temporal_shift(chunks[0][None, :, 1:], offsets, inverse=True)[0]
    else:
        raise ValueError(f"unknown block kind {kind!r}; expected basic, grouped or shift")
    return patches.reshape(num_frames, height, width, channels).permute(0, 3, 1, 2)


def token_frame_index(chunk_shapes: Sequence[tuple[int, int]], kind: str, num_frames: int, length: int,
                      offsets: torch.Tensor | None = None) -> list[torch.Tensor]:
    """For every hooked call ``(n, K)``, the joint index ``frame * length + position`` of each token: (n, K).

    The inverse view of :func:`tokens_to_grid`, class tokens included.
    """
    if kind in ("basic", "grouped"):
        indices, first_frame = [], 0
        for items, tokens in chunk_shapes:
            per_item = tokens // length
            starts = (first_frame + per_item * torch.arange(items)) * length
            indices.append(starts[:, None] + torch.arange(tokens)[None, :])
            first_frame += items * per_item
        if first_frame != num_frames:
            raise ValueError(f"hooked calls {list(chunk_shapes)} cover {first_frame} frames, not {num_frames}")
        return indices
    if kind == "shift":
        if len(chunk_shapes) != 1 or tuple(chunk_shapes[0]) != (num_frames, length):
            raise ValueError(f"a shift block sees ({num_frames}, {length}) tokens, got {list(chunk_shapes)}")
        if offsets is None:
            raise ValueError("a shift block needs the STFL offsets (model.stfl.offsets)")
        source = temporal_shift_index(num_frames, offsets.cpu())  # (T, N): shifted[t, p] = x[source[t, p], p]
        rows = torch.arange(num_frames)
        cls = (rows * length)[:, None]
        patches = source * length + 1 + torch.arange(length - 1)[None, :]
        return [torch.cat([cls, patches], dim=1)]
    raise ValueError(f"unknown block kind {kind!r}; expected basic, grouped or shift")


# --------------------------------------------------------------------------- helpers
def _frames_tensor(frames) -> torch.Tensor:
    frames = torch.as_tensor(frames)
    if frames.dim() == 5 and frames.shape[0] == 1:
        frames = frames[0]
    if frames.dim() != 4 or frames.shape[1] != 3:
        raise ValueError(f"frames must be one normalised tracklet (T, 3, H, W), got shape {tuple(frames.shape)}")
    if not frames.is_floating_point():
        raise ValueError("frames must be a normalised float tensor (see lsmrl.data.sampling.build_transform)")
    return frames


def _block_index(model, layer: int) -> int:
    blocks = len(model.clip.visual.transformer.resblocks)
    if not -blocks <= layer < blocks:
        raise IndexError(f"layer {layer} out of range for a ViT with {blocks} blocks")
    return layer % blocks


def _grid(model) -> tuple[int, int]:
    return tuple(int(v) for v in model.clip.visual.grid_size)


def _upsample_and_normalise(raw: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    raw = np.nan_to_num(np.maximum(raw.astype(np.float32), 0.0))
    up = F.interpolate(torch.from_numpy(raw)[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    up = up.clamp_min(0).numpy()
    low, high = (float(up.min()), float(up.max())) if up.size else (0.0, 0.0)
    maps = ((up - low) / (high - low) if high > low else np.zeros_like(up)).astype(np.float32)
    mass = raw.reshape(raw.shape[0], -1).sum(axis=1, dtype=np.float64)
    total = float(mass.sum())
    contribution = mass / total if total > 0 else np.full(raw.shape[0], 1.0 / raw.shape[0])
    return np.clip(maps, 0.0, 1.0), contribution.astype(np.float32)


class _HookRecorder:
    """Forward hooks on some modules that record their outputs, for the calling thread only."""

    def __init__(self, modules: Sequence[nn.Module], keep_graph: bool = False):
        self._thread = threading.get_ident()
        self.keep_graph = keep_graph
        self.outputs: list[list[torch.Tensor]] = [[] for _ in modules]
        self.handles = [m.register_forward_hook(functools.partial(self._save, i)) for i, m in enumerate(modules)]

    def _save(self, index, module, inputs, output):
        if threading.get_ident() == self._thread:
            self.outputs[index].append(output if self.keep_graph else output.detach())

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []




def person_concentration(maps: np.ndarray, masks: np.ndarray) -> float:
    """Mean over frames of the share of a frame's map mass inside the person mask.

    ``maps`` (T, H, W) non-negative; ``masks`` (T, H, W) bool or soft coverage in
    [0, 1] (same shape). Frames with no map mass are left out; NaN if none has
    any. A map that ignores the person scores about the mask's area fraction.
    """
    maps = np.clip(np.asarray(maps, dtype=np.float64), 0.0, None)
    masks = np.asarray(masks, dtype=np.float64)
    if maps.ndim == 2:
        maps, masks = maps[None], masks[None] if masks.ndim == 2 else masks
    if maps.shape != masks.shape:
        raise ValueError(f"maps {maps.shape} and masks {masks.shape} must have the same shape")
    mass = maps.reshape(len(maps), -1).sum(axis=1)
    inside = (maps * masks).reshape(len(maps), -1).sum(axis=1)
    valid = mass > 0
    if not valid.any():
        return float("nan")
    return float(np.mean(inside[valid] / mass[valid]))
