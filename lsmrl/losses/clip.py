"""CLIP's symmetric image-caption contrastive loss with soft targets (Radford et al. 2021).

Used to pretrain the miniature CLIP on SynthVVI (design.md §3). Unlike web
data, SynthVVI captions repeat (several tracklets of one identity, and
different people who share every attribute word), so pairs with the *same
caption text* are all treated as positives (uniform soft targets) instead of
being pushed apart as false negatives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def clip_contrastive_loss(image_features: torch.Tensor, text_features: torch.Tensor,
                          caption_ids: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Mean of image->text and text->image soft-target cross-entropies."""
    image_features = F.normalize(image_features, dim=-1)
    text_features = F.normalize(text_features, dim=-1)
    logits = logit_scale * image_features @ text_features.t()
    targets = (caption_ids[:, None] == caption_ids[None, :]).float()
    targets = targets / targets.sum(dim=1, keepdim=True)
    image_to_text = -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    text_to_image = -(targets * F.log_softmax(logits.t(), dim=1)).sum(dim=1).mean()
    return (image_to_text + text_to_image) / 2
