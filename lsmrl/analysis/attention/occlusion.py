"""Occlusion sensitivity: the fall of a target when one patch of one frame is hidden.
"""

from __future__ import annotations

import numpy as np
import torch

from lsmrl.analysis.attention.gradcam import TrackletEmbedding, _describe
from lsmrl.analysis.attention.maps import AttentionMaps, _frames_tensor, _grid, _upsample_and_normalise
from lsmrl.engine.extract import inference_autocast


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
