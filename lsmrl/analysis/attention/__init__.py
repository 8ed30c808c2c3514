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

from lsmrl.analysis.attention.gradcam import TrackletEmbedding, gradcam_maps
from lsmrl.analysis.attention.maps import (
    HEAD_FUSIONS,
    METHODS,
    AttentionMaps,
    EmbeddingSimilarityTarget,
    PromptTarget,
    person_concentration,
    token_frame_index,
    tokens_to_grid,
)
from lsmrl.analysis.attention.occlusion import occlusion_maps
from lsmrl.analysis.attention.rollout import attention_rollout, attention_weights, rollout_matrix
from lsmrl.analysis.explanation_methods import CAM_WEIGHTINGS, EXPLANATION_METHODS


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


__all__ = ["AttentionMaps", "CAM_WEIGHTINGS", "EXPLANATION_METHODS", "EmbeddingSimilarityTarget", "HEAD_FUSIONS",
           "METHODS", "PromptTarget", "TrackletEmbedding", "attention_rollout", "attention_weights", "explain",
           "gradcam_maps", "occlusion_maps", "person_concentration", "rollout_matrix", "token_frame_index",
           "tokens_to_grid"]
