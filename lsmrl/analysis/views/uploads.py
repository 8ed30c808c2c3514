"""Retrieval for an uploaded clip (identity unknown: no AP, no camera rule)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lsmrl.analysis.failures import distance_to_similarity
from lsmrl.data.frame_indices import sample_frame_indices
from lsmrl.data.sampling import build_transform
from lsmrl.data.tracklet import MODALITIES
from lsmrl.errors import LSMRLError
from lsmrl.evaluation.distance import compute_distance
from lsmrl.model.stages import STAGES

if TYPE_CHECKING:  # pragma: no cover
    from lsmrl.analysis.explorer import Explorer


class UploadRetrieval:
    """``explorer.uploads``: embed a clip of frames and rank the gallery of the other modality."""

    def __init__(self, explorer: "Explorer"):
        self.explorer = explorer

    def frames_used(self, frames_uint8: np.ndarray) -> np.ndarray:
        """The frames of a clip the model sees: the protocol's test sampling of ``num_frames`` (evenly spaced
        when the protocol samples at random)."""
        ex = self.explorer
        sampling = ex.sampling if ex.sampling in ("evenly", "uniform") else "evenly"
        return np.asarray(frames_uint8)[sample_frame_indices(len(frames_uint8), ex.num_frames, sampling)]

    def embed(self, frames_uint8: np.ndarray, modality: str, model: str = "main") -> dict[str, np.ndarray]:
        """Every stage of an uploaded clip ``(T, H, W, 3)`` uint8, with the test transform and sampling."""
        ex = self.explorer
        frames = np.asarray(frames_uint8)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
            raise LSMRLError(f"an uploaded clip must be uint8 frames (T, H, W, 3), got {frames.dtype} {frames.shape}")
        if modality not in MODALITIES:
            raise LSMRLError(f"modality must be one of {MODALITIES}, got {modality!r}")
        bundle = ex.bundle(model)
        chosen = self.frames_used(frames)
        clip = build_transform(tuple(bundle.model.config.image_size), train=False)(list(chosen))
        # torch loads when a model is used, not at import
        import torch

        from lsmrl.engine.extract import inference_autocast

        with ex.model_lock, torch.no_grad(), inference_autocast(bundle.model, ex.device):  # bf16 where it pays
            bundle.model.eval()
            out = bundle.model(clip[None].to(ex.device), [modality])
        return {stage: out[stage][0].float().cpu().numpy() for stage in STAGES}

    def retrieve(self, frames_uint8: np.ndarray, modality: str, top_k: int = 10, model: str = "main") -> dict:
        """Rank the gallery of the other modality for an uploaded clip (no AP, no camera rule)."""
        ex = self.explorer
        bundle = ex.bundle(model)
        stages = self.embed(frames_uint8, modality, model)
        direction = self.direction_for(modality)
        _, gallery = ex.dataset.directions[direction]
        gallery = np.asarray(gallery).reshape(-1)
        distances = np.asarray(compute_distance(stages["embedding"][None], bundle.features["embedding"][gallery],
                                                ex.dataset.metric))[0]
        order = np.argsort(distances, kind="stable")[: int(top_k)]
        items = []
        for rank, column in enumerate(order, start=1):
            item = ex.tracklet_row(int(gallery[column]))
            item.update(rank=rank, distance=float(distances[column]),
                        similarity=float(distance_to_similarity(distances[column], ex.dataset.metric)))
            items.append(item)
        return {"direction": direction, "metric": ex.dataset.metric, "model": model,
                "query": {"modality": modality, "num_frames_uploaded": int(len(np.asarray(frames_uint8))),
                          "num_frames_used": ex.num_frames, "sampling": ex.sampling},
                "items": items, "note": "uploaded clip: identity unknown, so no AP and no camera rule"}

    def direction_for(self, modality: str) -> str:
        """The direction whose queries are of ``modality``."""
        ex = self.explorer
        for name in ex.directions:
            queries = np.asarray(ex.dataset.directions[name][0]).reshape(-1)
            if len(queries) and ex.dataset.test[int(queries[0])].modality == modality:
                return name
        raise LSMRLError(f"this data set has no direction with {modality} queries")


__all__ = ["UploadRetrieval"]
