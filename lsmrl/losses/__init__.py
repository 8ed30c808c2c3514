"""Training losses of LSMRL: identity-level, image-text (CLIP-ReID) and modality-level.

- :mod:`lsmrl.losses.identity`: :class:`CrossEntropyLabelSmooth`, :class:`TripletLoss`
- :mod:`lsmrl.losses.contrastive`: stage-1 SupCon image-to-text / text-to-image,
  stage-2 :func:`image_text_cross_entropy`
- :mod:`lsmrl.losses.modality`: :func:`hetero_center_loss`, :func:`cross_modal_contrastive_loss`,
  :func:`cross_modal_prompt_consistency` (SD's generated prompts)
- :mod:`lsmrl.losses.weights`: :class:`LossWeights`
"""

from lsmrl.losses.contrastive import (
    SupConLoss,
    image_text_cross_entropy,
    image_to_text_contrastive,
    supcon_loss,
    text_to_image_contrastive,
)
from lsmrl.losses.identity import CrossEntropyLabelSmooth, TripletLoss, pairwise_distance
from lsmrl.losses.modality import (
    cross_modal_contrastive_loss,
    cross_modal_prompt_consistency,
    hetero_center_loss,
    modality_centers,
)
from lsmrl.losses.weights import LossWeights

__all__ = [
    "CrossEntropyLabelSmooth",
    "LossWeights",
    "SupConLoss",
    "TripletLoss",
    "cross_modal_contrastive_loss",
    "cross_modal_prompt_consistency",
    "hetero_center_loss",
    "image_text_cross_entropy",
    "image_to_text_contrastive",
    "modality_centers",
    "pairwise_distance",
    "supcon_loss",
    "text_to_image_contrastive",
]
