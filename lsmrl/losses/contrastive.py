"""Image-text losses of CLIP-ReID's two-stage prompt learning (Li et al., AAAI 2023).

LSMRL (arXiv 2601.12062) lists image-to-text and text-to-image contrastive
losses among its identity-level losses and learns CLIP-ReID-style prompts
(design.md §2, §6); these follow CLIP-ReID:

- **Stage 1** (prompts learnt, both encoders frozen): a supervised contrastive
  loss (Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020) between
  the batch's image features and the text features of the batch's labels, in
  both directions: :func:`image_to_text_contrastive` and
  :func:`text_to_image_contrastive`. Every candidate with the anchor's label is
  a positive. CLIP-ReID uses temperature 1 on unnormalised features; both are
  arguments here.
- **Stage 2** (image encoder fine-tuned, prompts frozen):
  :func:`image_text_cross_entropy`, a cross-entropy whose logits are the
  similarities of each image feature with the text features of *all* training
  identities (label-smoothed, epsilon 0.1, scale 1, as in CLIP-ReID).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from lsmrl.losses.identity import zero_loss


def supcon_loss(
    anchors: torch.Tensor,
    candidates: torch.Tensor,
    anchor_labels: torch.Tensor,
    candidate_labels: torch.Tensor,
    temperature: float = 1.0,
    normalize: bool = False,
) -> torch.Tensor:
    """Supervised contrastive loss of anchors (M, D) against candidates (N, D).

    For anchor ``i`` with logits ``s_ij = <a_i, c_j> / temperature`` and
    positives ``P(i) = {j : label(c_j) = label(a_i)}``:
    ``loss_i = -(1/|P(i)|) * sum_{p in P(i)} log softmax_j(s_ij)[p]``.
    The loss is the mean over anchors with at least one positive (anchors
    without any are skipped; if none is left the result is a zero that keeps
    ``requires_grad``). ``normalize=True`` L2-normalises both sides first
    (cosine similarities).
    """
    if anchors.ndim != 2 or candidates.ndim != 2 or anchors.shape[1] != candidates.shape[1]:
        raise ValueError(
            "anchors and candidates must be (M, D) and (N, D), "
            f"got {tuple(anchors.shape)} and {tuple(candidates.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if normalize:
        anchors, candidates = F.normalize(anchors, dim=1), F.normalize(candidates, dim=1)
    positive = anchor_labels.reshape(-1, 1).to(anchors.device) == candidate_labels.reshape(1, -1).to(anchors.device)
    has_positive = positive.any(dim=1)
    if not bool(has_positive.any()):
        return zero_loss(anchors) + zero_loss(candidates)
    log_prob = F.log_softmax(anchors @ candidates.T / temperature, dim=1)
    positive_log_prob = torch.where(positive, log_prob, torch.zeros_like(log_prob)).sum(dim=1)
    mean_positive_log_prob = positive_log_prob[has_positive] / positive[has_positive].sum(dim=1)
    return -mean_positive_log_prob.mean()


class SupConLoss(nn.Module):
    """Module form of :func:`supcon_loss`: ``forward(anchors, candidates, anchor_labels, candidate_labels)``."""

    def __init__(self, temperature: float = 1.0, normalize: bool = False) -> None:
        super().__init__()
        self.temperature = temperature
        self.normalize = normalize

    def forward(
        self,
        anchors: torch.Tensor,
        candidates: torch.Tensor,
        anchor_labels: torch.Tensor,
        candidate_labels: torch.Tensor,
    ) -> torch.Tensor:
        return supcon_loss(anchors, candidates, anchor_labels, candidate_labels, self.temperature, self.normalize)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, normalize={self.normalize}"


def image_to_text_contrastive(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    labels: torch.Tensor,
    temperature: float = 1.0,
    normalize: bool = False,
) -> torch.Tensor:
    """Stage-1 L_i2t: each image (N, D) against the texts (N, D) of the batch's labels.

    ``text_features[j]`` is the prompt feature of ``labels[j]``; positives are
    the texts with the image's label.
    """
    return supcon_loss(image_features, text_features, labels, labels, temperature, normalize)


def text_to_image_contrastive(
    text_features: torch.Tensor,
    image_features: torch.Tensor,
    labels: torch.Tensor,
    temperature: float = 1.0,
    normalize: bool = False,
) -> torch.Tensor:
    """Stage-1 L_t2i: each text (N, D) against the batch's images (N, D); positives share the label."""
    return supcon_loss(text_features, image_features, labels, labels, temperature, normalize)


def image_text_cross_entropy(
    image_features: torch.Tensor,
    text_features_all_classes: torch.Tensor,
    labels: torch.Tensor,
    logit_scale: float | torch.Tensor = 1.0,
    epsilon: float = 0.1,
    normalize: bool = False,
) -> torch.Tensor:
    """Stage-2 L_i2tce: cross-entropy over all identities' prompt features.

    ``logits = logit_scale * image_features (N, D) @ text_features_all_classes (C, D).T``,
    then cross-entropy with label smoothing ``epsilon`` against ``labels`` (N,)
    in ``[0, C)``. CLIP-ReID uses ``logit_scale=1`` on unnormalised features and
    its label-smoothed ID criterion (epsilon 0.1); pass ``normalize=True`` and
    CLIP's logit scale (about 100) for cosine logits.
    """
    if image_features.ndim != 2 or text_features_all_classes.ndim != 2:
        raise ValueError("image_features and text_features_all_classes must be 2-D")
    if image_features.shape[1] != text_features_all_classes.shape[1]:
        raise ValueError(
            f"feature dimensions differ: images {image_features.shape[1]}, texts {text_features_all_classes.shape[1]}"
        )
    if normalize:
        image_features = F.normalize(image_features, dim=1)
        text_features_all_classes = F.normalize(text_features_all_classes, dim=1)
    logits = logit_scale * (image_features @ text_features_all_classes.T)
    return F.cross_entropy(logits, labels.to(logits.device).long(), label_smoothing=epsilon)
