"""Per-frame explanation maps of a query and its match (or an identity prompt); torch is imported on use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lsmrl.analysis.explanation_methods import EXPLANATION_METHODS
from lsmrl.data.sampling import build_transform
from lsmrl.data.tracklet import INFRARED_TO_VISIBLE
from lsmrl.errors import LSMRLError

if TYPE_CHECKING:  # pragma: no cover
    from lsmrl.analysis.explorer import Explorer



class AttentionAnalysis:
    """``explorer.attention``: see :meth:`explain`."""

    def __init__(self, explorer: "Explorer"):
        self.explorer = explorer

    def tracklet_tensor(self, test_index: str | int, num_frames: int | None = None, model: str = "main"):
        """A test tracklet's frames through the test transform: a (T, 3, H, W) float tensor on the CPU."""
        ex = self.explorer
        frames = ex.tracklet_frames(test_index, num_frames)
        return build_transform(tuple(ex.bundle(model).model.config.image_size), train=False)(list(frames))

    def explain(self, query: str | int, match: str | int | None = None, target: str = "match",
                method: str = "gradcam", direction: str = INFRARED_TO_VISIBLE, layer: int = -1,
                stage: str | None = None, both: bool = True, model: str = "main") -> dict:
        """Per-frame maps of the query (and the match) from :mod:`lsmrl.analysis.attention`.

        ``target="match"``: the similarity to ``match``'s embedding (default match:
        the query's top-1 in ``direction``); with ``both`` the match's maps toward
        the query are computed too. ``target="prompt"``: the similarity to an
        identity prompt (``match`` = a prompt label; default: the one SD attends to
        most). ``method``: one of :data:`EXPLANATION_METHODS`: ``"gradcam"``,
        ``"hirescam"`` (Grad-CAM with HiResCAM's token-wise weighting),
        ``"occlusion"`` (the fall of the same target when one patch is hidden;
        gradient-free, ``T * grid`` forward passes) or ``"rollout"`` (attention
        rollout, target-free). Returns ``{"query", "match", "prompt",
        "query_frames", "query_maps", "match_frames", "match_maps"}`` (maps are
        :class:`lsmrl.analysis.attention.AttentionMaps` at the model's input size;
        frames are (T, H, W, 3) uint8 at their own size, which
        :func:`lsmrl.viz.images.overlay` draws the maps over; ``match`` is None for
        prompts, ``prompt`` None for matches).
        """
        # torch loads when a model is used, not at import
        import torch

        from lsmrl.analysis import attention as att

        ex = self.explorer
        if target not in ("match", "prompt"):
            raise LSMRLError(f"target must be 'match' or 'prompt', got {target!r}")
        if method not in EXPLANATION_METHODS:
            raise LSMRLError(f"method must be one of {', '.join(EXPLANATION_METHODS)}, got {method!r}")
        bundle = ex.bundle(model)
        net = bundle.model
        q = ex.test_index(query)
        out: dict[str, Any] = {"query": ex.tracklet_row(q), "match": None, "prompt": None, "method": method,
                               "target": target}
        m = None
        query_target = match_target = None
        if target == "match":
            m = ex.test_index(match) if match is not None else ex.retrieve(q, direction, 1, model)["items"][0][
                "test_index"]
            out["match"] = ex.tracklet_row(m)
            emb_stage = stage or "embedding"
            query_target = att.EmbeddingSimilarityTarget(torch.from_numpy(bundle.features[emb_stage][m]),
                                                         f"similarity to {out['match']['tid']}")
            match_target = att.EmbeddingSimilarityTarget(torch.from_numpy(bundle.features[emb_stage][q]),
                                                         f"similarity to {out['query']['tid']}")
        else:
            prompts = ex.diffusion.prompt_features()
            if match is None:
                attention = bundle.features.get("sd_attention")
                scores = attention[q] if attention is not None else prompts @ bundle.features["stfl"][q]
                label = int(np.argmax(scores))
            else:
                label = int(match)
            if not 0 <= label < len(prompts):
                raise LSMRLError(f"prompt label {label} out of range (0..{len(prompts) - 1})")
            pids = ex.diffusion.prompt_pids()
            out["prompt"] = {"prompt_index": label, "pid": pids[label] if pids else None}
            query_target = att.PromptTarget(torch.from_numpy(prompts[label]),
                                            f"similarity to prompt {label}" + (f" (id {pids[label]})" if pids else ""))

        def explain_one(index: int, tgt) -> tuple[np.ndarray, Any]:
            frames_uint8 = ex.tracklet_frames(index)
            tensor = build_transform(tuple(net.config.image_size), train=False)(list(frames_uint8))
            modality = ex.dataset.test[index].modality
            with ex.model_lock:
                maps = att.explain(net, tensor, modality, tgt, method, stage=stage, layer=layer)
            return frames_uint8, maps

        out["query_frames"], out["query_maps"] = explain_one(q, query_target)
        out["match_frames"] = out["match_maps"] = None
        if m is not None and both:
            out["match_frames"], out["match_maps"] = explain_one(m, match_target)
        return out


__all__ = ["AttentionAnalysis", "EXPLANATION_METHODS"]
