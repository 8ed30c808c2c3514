"""Grad-CAM and HiResCAM of a similarity target over a whole tracklet (pytorch-grad-cam).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn

from lsmrl.analysis.attention.maps import (
    AttentionMaps,
    _block_index,
    _frames_tensor,
    _grid,
    _HookRecorder,
    _upsample_and_normalise,
    tokens_to_grid,
)
from lsmrl.analysis.explanation_methods import CAM_WEIGHTINGS
from lsmrl.device import autocast_context


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
