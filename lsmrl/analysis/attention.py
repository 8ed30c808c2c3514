"""Where does the model look? Grad-CAM, attention rollout and occlusion for whole tracklets.

Three explanations of a tracklet's retrieval feature, all mapped back to the
frames (the first two through STFL's token layouts, :mod:`lsmrl.model.stfl`):

* :func:`gradcam_maps`: **Grad-CAM** (Selvaraju et al., ICCV 2017) of a
  similarity target, computed with pytorch-grad-cam's ``GradCAM`` (jacobgil,
  1.5.7; anchors.md §6) on one tracklet fed as a ``(T, 3, H, W)`` batch. The
  hooked layer is ``resblocks[layer].ln_1`` (the block *output* gives all-zero
  maps, design.md §5). The targets are ours (the library ships no similarity
  target): :class:`EmbeddingSimilarityTarget` (cosine with a gallery embedding)
  and :class:`PromptTarget` (cosine with a text/prompt feature). ``cam="hirescam"``
  uses pytorch-grad-cam's ``HiResCAM`` instead (gradient times activation token
  by token, not the channel's mean gradient times the activation).
* :func:`occlusion_maps`: **occlusion sensitivity** (Zeiler & Fergus, ECCV 2014)
  of the same targets: the fall of the target when one patch of one frame is
  hidden. Gradient-free and faithful by construction, the reference the other
  two can be checked against (at the cost of ``T * grid`` forward passes).
* :func:`attention_rollout`: gradient-free **attention rollout** (Abnar &
  Zuidema, ACL 2020; head fusion and discarding as in jacobgil/vit-explain).

**Normalisation across the tracklet.** pytorch-grad-cam min-max normalises every
frame on its own (``scale_cam_image``), so every frame peaks at 1 and the maps
cannot say *which frame* mattered (design.md §5b). :class:`AttentionMaps` keeps
the raw maps, scales all frames with one tracklet-wide min and max, and reports each
frame's share of the total positive mass (``frame_contribution``).
Grad-CAM's channel weights are pytorch-grad-cam's for a batch: the mean
gradient over *each frame's* patch grid, so each frame is weighted by its own
evidence.

**Token layouts** (:func:`tokens_to_grid`, :func:`token_frame_index`):

=========  ==================================  ====================================
block      what ``ln_1`` sees (B = 1)          mapped back to frames by
=========  ==================================  ====================================
basic      ``(T, 1+N, C)``                     dropping the class token
grouped    ``(T//G, G*(1+N), C)`` (+ a call    splitting each group into its G
           ``(1, r*(1+N), C)`` for a shorter   frames (frame-major, as
           last group: two calls per block)    :func:`~lsmrl.model.stfl.run_grouped`)
shift      ``(T, 1+N, C)``, patch tokens       ``temporal_shift(..., inverse=True)``
           temporally shifted                  with the STFL offsets
=========  ==================================  ====================================

Rollout through STFL [our choice]: rollout runs on the joint token space of the
whole tracklet (``T * (1+N)`` tokens). A basic block's attention is
block-diagonal (each frame on its own); a grouped block keeps the **full
cross-frame mixing** of its joint attention over G frames; a shift block's
attention is placed where its tokens really come from (a shifted patch token
of row ``t`` belongs to frame ``(t + offset) % T``), and its residual keeps each
token in its own frame (the shift is undone after the block). The retrieval
feature is the mean of the frames' class tokens, so the relevance of a patch
is the mean over frames of the class-token rows of the rolled-out matrix;
a frame's patches can therefore be relevant through *another* frame's class
token, which is exactly what STFL's temporal mixing does.

Thread-safety: nothing global. Hooks are registered per call, record only the
forward pass of the calling thread, and are removed in ``finally``. Grad-CAM
takes its gradients with ``torch.autograd.grad`` and never writes the
parameters' ``.grad``. It and occlusion switch the model to eval mode (BaseCAM
does, and BNNeck needs it for a batch of one) and restore its train/eval state
afterwards; don't run them on a model that is being trained at the same time.
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lsmrl.device import autocast_context
from lsmrl.model.stfl import temporal_shift, temporal_shift_index

METHODS = ("gradcam", "rollout", "occlusion")
# how a Grad-CAM map weighs the hooked layer's channels: Grad-CAM averages each channel's gradient over the frame's
# grid; HiResCAM multiplies gradient and activation token by token (Draelos & Carin 2020)
CAM_WEIGHTINGS = ("gradcam", "hirescam")
EXPLANATION_METHODS = CAM_WEIGHTINGS + ("occlusion", "rollout")  # what explain() takes
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


# --------------------------------------------------------------------------- Grad-CAM
class TrackletEmbedding(nn.Module):
    """The wrapper pytorch-grad-cam runs: ``forward(x (T, 3, H, W)) -> model(x[None], [modality])[stage]`` (1, D)."""

    def __init__(self, model: nn.Module, modality, stage: str = "embedding"):
        super().__init__()
        self.model = model
        self.modality = modality
        self.stage = stage

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        out = self.model(frames.unsqueeze(0), [self.modality])
        if self.stage not in out or out[self.stage] is None or out[self.stage].dim() != 2:
            raise ValueError(f"stage {self.stage!r} is not a (1, D) feature of the model output; "
                             "use one of embedding, cmi, sd, stfl")
        return out[self.stage]


def _tracklet_gradcam_class(cam: str = "gradcam"):
    """pytorch-grad-cam's ``GradCAM`` (or ``HiResCAM``) with a recorder that understands STFL's token layouts
    (built lazily)."""
    from pytorch_grad_cam import GradCAM, HiResCAM
    from pytorch_grad_cam.activations_and_gradients import ActivationsAndGradients

    if cam not in CAM_WEIGHTINGS:
        raise ValueError(f"cam must be one of {CAM_WEIGHTINGS}, got {cam!r}")
    base = {"gradcam": GradCAM, "hirescam": HiResCAM}[cam]

    class TrackletActivations(ActivationsAndGradients):
        """Records the hooked layer's outputs and gradients of this thread's call, mapped to (T, C, h, w).

        Unlike the library's recorder it keeps every call of the layer (a grouped
        block with a shorter last group runs twice) and puts gradients back in
        call order, then applies :func:`tokens_to_grid`.
        """

        def __init__(self, model, target_layer, to_grid):  # noqa: D401 (library API)
            self.model = model
            self.reshape_transform = to_grid
            self.detach = True
            self._to_grid = to_grid
            self._recorder = _HookRecorder([target_layer], keep_graph=True)
            self.handles = self._recorder.handles
            self._grads: dict[int, torch.Tensor] = {}

        def _chunks(self):
            return self._recorder.outputs[0]

        def __call__(self, x):
            self.clear()
            return self.model(x)

        def differentiate(self, score: torch.Tensor) -> None:
            """The gradients of ``score`` with respect to the recorded chunks, with ``torch.autograd.grad``:
            unlike ``backward`` (pytorch-grad-cam's), nothing accumulates into the parameters' ``.grad``, so
            threads explaining with one model, or a model being trained, do not race on it."""
            chunks = self._chunks()
            grads = torch.autograd.grad(score, chunks, allow_unused=True)
            self._grads = {i: (g if g is not None else torch.zeros_like(c)).detach()
                           for i, (c, g) in enumerate(zip(chunks, grads))}

        @property
        def activations(self):
            chunks = self._chunks()
            return [self._to_grid([c.detach() for c in chunks]).cpu()] if chunks else []

        @property
        def gradients(self):
            chunks = self._chunks()
            if not chunks or len(self._grads) != len(chunks):
                return []
            return [self._to_grid([self._grads[i] for i in range(len(chunks))]).cpu()]

        def clear(self):
            self._recorder.outputs = [[]]
            self._grads = {}

        def release(self):
            self.clear()
            self._recorder.remove()
            self.handles = []

    class TrackletGradCAM(base):
        def __init__(self, model, target_layer, to_grid):
            super().__init__(model, [target_layer])
            self.activations_and_grads.release()  # the library's hooks record every thread's forward passes
            self.activations_and_grads = TrackletActivations(model, target_layer, to_grid)

    return TrackletGradCAM


def _describe(target) -> str:
    return str(getattr(target, "description", None) or type(target).__name__)


def gradcam_maps(model, frames, modality, target, stage: str | None = None, layer: int = -1,
                 cam: str = "gradcam") -> AttentionMaps:
    """Grad-CAM of ``target(model(frames)[stage])`` on ``resblocks[layer].ln_1``, for one tracklet.

    ``frames``: one tracklet, normalised, ``(T, 3, H, W)`` (or ``(1, T, 3, H, W)``).
    ``modality``: ``"visible"`` / ``"infrared"``. ``target``: a callable on the
    output row (D,), e.g. :class:`EmbeddingSimilarityTarget` or
    :class:`PromptTarget`. ``stage``: the model output to explain; None takes the
    target's own ``stage`` ("embedding" for gallery similarity, "cmi" for
    prompts), else "embedding". ``layer``: the block (any kind: basic, grouped,
    shift; negative counts from the end).

    Grad-CAM weights (the mean gradient of every channel over a frame's patch
    grid) and the weighted sum come from pytorch-grad-cam's ``GradCAM``
    (``cam="hirescam"``: ``HiResCAM``, gradient times activation token by token);
    the result keeps the raw ReLU'd maps, normalised across the whole tracklet.
    The gradients are taken with ``torch.autograd.grad``: the parameters' ``.grad``
    is never written, so concurrent calls on one model do not race.
    """
    frames = _frames_tensor(frames)
    num_frames, _, height, width = frames.shape
    stage = stage or getattr(target, "stage", None) or "embedding"
    index = _block_index(model, layer)
    kind = model.stfl.block_kinds()[index]
    module = model.clip.visual.transformer.resblocks[index].ln_1
    to_grid = functools.partial(tokens_to_grid, kind=kind, num_frames=num_frames, grid=_grid(model),
                                offsets=model.stfl.offsets)
    parameter = next(model.parameters())
    wrapper = TrackletEmbedding(model, modality, stage)
    was_training = model.training
    explainer = None
    try:
        # fp32 even when called inside a bf16 autocast region: the gradients of a bf16 graph are too coarse
        # for maps that compare small per-token differences
        with torch.inference_mode(False), torch.enable_grad(), autocast_context(parameter.device, "fp32"):
            explainer = _tracklet_gradcam_class(cam)(wrapper, module, to_grid)  # BaseCAM calls model.eval()
            x = frames.detach().to(device=parameter.device, dtype=parameter.dtype).clone().requires_grad_(True)
            recorder = explainer.activations_and_grads
            # BaseCAM.forward would zero the parameters' grads and call backward; differentiate() touches neither
            score_tensor = target(recorder(x)[0])
            recorder.differentiate(score_tensor)
            activations, gradients = recorder.activations, recorder.gradients
            if not activations or not gradients:
                raise RuntimeError(f"Grad-CAM recorded no activations/gradients at block {index} ({kind})")
            raw = explainer.get_cam_image(x, module, [target], activations[0].numpy(), gradients[0].numpy(), False)
            score = float(score_tensor.detach())
    finally:
        if explainer is not None:
            explainer.activations_and_grads.release()
        model.train(was_training)
    raw = np.maximum(np.asarray(raw, dtype=np.float32), 0.0)
    maps, contribution = _upsample_and_normalise(raw, (height, width))
    return AttentionMaps(maps=maps, raw=raw, frame_contribution=contribution, method="gradcam",
                         target=_describe(target), score=score, layer=index, stage=stage, block_kind=kind,
                         weighting=cam)


# --------------------------------------------------------------------------- attention rollout
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


# --------------------------------------------------------------------------- occlusion sensitivity
def occlusion_maps(model, frames, modality, target, stage: str | None = None, fill: float = 0.0,
                   batch_size: int = 64, precision: str = "auto") -> AttentionMaps:
    """Occlusion sensitivity (Zeiler & Fergus 2014) of ``target(model(frames)[stage])``, one patch at a time.

    ``raw[t, i, j] = max(0, s - s_tij)``: how much the target (e.g. the cosine
    similarity to a gallery tracklet) falls when the ViT patch ``(i, j)`` of frame
    ``t`` alone is replaced by ``fill`` (0 = the normalisation mean colour), one
    forward pass per (frame, patch), batched. Gradient-free and faithful by
    construction: a high value means hiding that patch would break the match.
    The cost is ``T * grid`` forward passes of the tracklet (192 for the
    miniature model at T=6). ``target`` and ``stage`` as in :func:`gradcam_maps`. ``precision``: the
    forward passes' (:func:`lsmrl.engine.extract.inference_autocast`; the target is scored in fp32).
    """
    from lsmrl.engine.extract import inference_autocast

    frames = _frames_tensor(frames)
    num_frames, _, height, width = frames.shape
    stage = stage or getattr(target, "stage", None) or "embedding"
    grid_h, grid_w = _grid(model)
    patch_h, patch_w = height // grid_h, width // grid_w
    parameter = next(model.parameters())
    wrapper = TrackletEmbedding(model, modality, stage)
    x = frames.detach().to(device=parameter.device, dtype=parameter.dtype)
    cells = [(t, i, j) for t in range(num_frames) for i in range(grid_h) for j in range(grid_w)]
    was_training = model.training
    model.eval()
    scores = []
    try:
        with torch.no_grad():
            with inference_autocast(model, parameter.device, precision):
                reference = wrapper(x)[0].float()
            score = float(target(reference))
            for start in range(0, len(cells), batch_size):
                batch = x[None].repeat(len(cells[start:start + batch_size]), 1, 1, 1, 1)
                for row, (t, i, j) in enumerate(cells[start:start + batch_size]):
                    batch[row, t, :, i * patch_h:(i + 1) * patch_h, j * patch_w:(j + 1) * patch_w] = fill
                with inference_autocast(model, parameter.device, precision):
                    out = model(batch, [modality] * len(batch))[stage].float()
                scores += [float(target(row)) for row in out]
    finally:
        model.train(was_training)
    raw = np.maximum(score - np.asarray(scores, dtype=np.float32).reshape(num_frames, grid_h, grid_w), 0.0)
    maps, contribution = _upsample_and_normalise(raw, (height, width))
    return AttentionMaps(maps=maps, raw=raw, frame_contribution=contribution, method="occlusion",
                         target=_describe(target), score=score, stage=stage, extras={"fill": fill})


def explain(model, frames, modality, target, method: str = "gradcam", stage: str | None = None,
            layer: int = -1) -> AttentionMaps:
    """The maps of one tracklet by ``method``: ``"gradcam"`` or ``"hirescam"`` (:func:`gradcam_maps` at
    ``layer``), ``"occlusion"`` (:func:`occlusion_maps`) or ``"rollout"`` (:func:`attention_rollout`, which
    ignores ``target``, ``stage`` and ``layer``)."""
    if method in CAM_WEIGHTINGS:
        return gradcam_maps(model, frames, modality, target, stage=stage, layer=layer, cam=method)
    if method == "occlusion":
        return occlusion_maps(model, frames, modality, target, stage=stage)
    if method == "rollout":
        return attention_rollout(model, frames, modality)
    raise ValueError(f"method must be one of {EXPLANATION_METHODS}, got {method!r}")


# --------------------------------------------------------------------------- display and scores
def jet_colormap(values: np.ndarray) -> np.ndarray:
    """A jet-like colormap (blue -> cyan -> yellow -> red) in numpy: values in [0, 1] -> float RGB in [0, 1]."""
    x = np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0)[..., None]
    centres = np.array([0.75, 0.5, 0.25], dtype=np.float32)  # red, green, blue peaks
    return np.clip(1.5 - np.abs(4.0 * (x - centres)), 0.0, 1.0)


def _resize_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if maps.shape[-2:] == tuple(size):
        return maps
    tensor = torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32))[:, None]
    return F.interpolate(tensor, size=size, mode="bilinear", align_corners=False)[:, 0].numpy()


def overlay(frames_uint8: np.ndarray, maps: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend jet-coloured maps over frames: (T, H, W, 3) uint8 + (T, H, W) in [0, 1] -> (T, H, W, 3) uint8.

    Single frames (H, W, 3) + (H, W) work too. Maps of another size are resized bilinearly.
    """
    frames = np.asarray(frames_uint8)
    maps = np.asarray(maps, dtype=np.float32)
    single = frames.ndim == 3
    if single:
        frames, maps = frames[None], maps[None] if maps.ndim == 2 else maps
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if maps.ndim != 3 or maps.shape[0] != frames.shape[0]:
        raise ValueError(f"maps must be (T, h, w) with T = {frames.shape[0]}, got {maps.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    maps = np.nan_to_num(_resize_maps(maps, frames.shape[1:3]))
    colours = jet_colormap(maps) * 255.0
    blended = (1.0 - alpha) * frames.astype(np.float32) + alpha * colours
    out = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return out[0] if single else out


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
