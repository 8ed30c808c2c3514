"""Modality-level losses: LSMRL's two losses against the visible-infrared gap.

LSMRL (arXiv 2601.12062, overview and abstract) adds two modality-level losses
to its identity-level ones, meant to improve discrimination and generalisation
to unseen identities. Their formulas were not readable, so both are **our
choice** (design.md §6), each from a published method:

1. :func:`hetero_center_loss` is the hetero-center triplet loss of Liu et al.,
   "Parameter Sharing Exploration and Hetero-Center Triplet Loss for
   Visible-Thermal Person Re-Identification" (IEEE TMM 2020). Each identity in
   the batch gets a visible centre and an infrared centre (mean features). Each
   centre is an anchor, its positive is the same identity's centre in the other
   modality, and its hardest negative is the nearest centre of another identity:
   ``max(0, margin + d(c_v^i, c_r^i) - min_{j != i} d(c_v^i, c_*^j))`` and
   symmetrically for ``c_r^i``, averaged over anchors. Liu et al. mine the
   negative among the other identities' centres of **both** modalities
   (``negatives="all"``, the default); ``negatives="cross_modal"`` restricts it
   to the other modality's centres.
2. :func:`cross_modal_contrastive_loss` is an InfoNCE / supervised contrastive
   loss (Khosla et al., NeurIPS 2020) across modalities: visible anchors
   against infrared candidates and infrared anchors against visible
   candidates, positives = same identity, cosine similarity over a
   temperature. It uses no identity classifier, so what it learns (align a
   person's two modalities, push other people away) does not depend on the
   training identities and carries over to unseen ones.

Both skip identities that lack one modality in the batch; if nothing is left
they return a zero that keeps ``requires_grad``.

Modalities are (N,) bool or int tensors with 1 / True = infrared.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lsmrl.losses.contrastive import supcon_loss
from lsmrl.losses.identity import pairwise_distance, zero_loss


def _check(features: torch.Tensor, labels: torch.Tensor, modalities: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if features.ndim != 2:
        raise ValueError(f"features must be (N, D), got {tuple(features.shape)}")
    n = features.shape[0]
    labels = labels.reshape(-1).to(features.device)
    infrared = modalities.reshape(-1).to(features.device).bool()
    if labels.shape[0] != n or infrared.shape[0] != n:
        raise ValueError(f"labels and modalities must have {n} entries, got {labels.shape[0]} and {infrared.shape[0]}")
    return labels, infrared


def modality_centers(
    features: torch.Tensor, labels: torch.Tensor, modalities: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-identity, per-modality mean features.

    Returns ``(identities (L,), centers (2L, D), present (2L,) bool, is_infrared (2L,) bool)``:
    rows ``0..L-1`` are the visible centres of ``identities``, rows ``L..2L-1``
    the infrared ones; ``present`` is False where the identity has no sample of
    that modality in the batch (that row is 0).
    """
    labels, infrared = _check(features, labels, modalities)
    identities, index = torch.unique(labels, return_inverse=True)
    num_ids = identities.shape[0]
    group = index + num_ids * infrared.long()
    sums = features.new_zeros((2 * num_ids, features.shape[1])).index_add(0, group, features)
    counts = torch.bincount(group, minlength=2 * num_ids)
    centers = sums / counts.clamp_min(1).unsqueeze(1).to(features.dtype)
    is_infrared = torch.arange(2 * num_ids, device=features.device) >= num_ids
    return identities, centers, counts > 0, is_infrared


def hetero_center_loss(
    features: torch.Tensor,
    labels: torch.Tensor,
    modalities: torch.Tensor,
    margin: float = 0.3,
    negatives: str = "all",
    metric: str = "euclidean",
) -> torch.Tensor:
    """Hetero-center triplet loss (Liu et al., TMM 2020) over a batch; see the module docstring.

    ``negatives``: ``"all"`` (Liu et al.: other identities' centres of both
    modalities) or ``"cross_modal"`` (only the other modality's centres).
    Anchors are the centres of identities present in both modalities; an
    identity with one modality only still provides its centre as a negative.
    Margin 0.3 (the default of Liu et al.'s released loss); Euclidean distance (or ``"cosine"``).
    """
    if negatives not in ("all", "cross_modal"):
        raise ValueError(f"negatives must be 'all' or 'cross_modal', got {negatives!r}")
    identities, centers, present, is_infrared = modality_centers(features, labels, modalities)
    num_ids = identities.shape[0]
    both = present[:num_ids] & present[num_ids:]
    is_anchor = torch.cat([both, both])
    if not bool(is_anchor.any()):
        return zero_loss(features)

    dist = pairwise_distance(centers, centers, metric)  # (2L, 2L)
    rows = torch.arange(2 * num_ids, device=features.device)
    counterpart = (rows + num_ids) % (2 * num_ids)  # same identity, other modality
    d_ap = dist[rows, counterpart]

    identity_of = rows % num_ids
    is_neg = (identity_of[:, None] != identity_of[None, :]) & present[None, :]
    if negatives == "cross_modal":
        is_neg &= is_infrared[:, None] != is_infrared[None, :]
    d_an = dist.masked_fill(~is_neg, float("inf")).min(dim=1).values

    valid = is_anchor & is_neg.any(dim=1)
    if not bool(valid.any()):
        return zero_loss(features)
    return F.relu(margin + d_ap[valid] - d_an[valid]).mean()


def cross_modal_contrastive_loss(
    features: torch.Tensor,
    labels: torch.Tensor,
    modalities: torch.Tensor,
    temperature: float = 0.1,
) -> torch.Tensor:
    """Cross-modal InfoNCE: ``(L_vis->ir + L_ir->vis) / 2``; see the module docstring.

    Features are L2-normalised; each direction is :func:`supcon_loss` of one
    modality's samples (anchors) against all of the other modality's samples
    (candidates), positives = same identity, mean over anchors that have one.
    Temperature 0.1 is our choice (SupCon's range; CLIP's learnt value is ~0.01).
    """
    labels, infrared = _check(features, labels, modalities)
    visible = ~infrared
    if not bool(visible.any()) or not bool(infrared.any()):
        return zero_loss(features)
    normed = F.normalize(features, dim=1)
    # identities without the other modality have no positive: supcon_loss skips them
    vis_to_ir = supcon_loss(normed[visible], normed[infrared], labels[visible], labels[infrared], temperature)
    ir_to_vis = supcon_loss(normed[infrared], normed[visible], labels[infrared], labels[visible], temperature)
    return 0.5 * (vis_to_ir + ir_to_vis)


def cross_modal_prompt_consistency(prompts: torch.Tensor, labels: torch.Tensor,
                                   modalities: torch.Tensor) -> torch.Tensor:
    """1 - cosine between the mean generated prompt of each identity's visible and infrared tracklets.

    SD's generated prompts (:mod:`lsmrl.model.semantic_diffusion`) are to be *modality-shared*: the two
    modalities of one identity should read as the same sentence. The mean over the identities of the batch
    that have both modalities; a zero (in the graph) when none has.
    """
    prompts = F.normalize(prompts.float(), dim=1)
    terms = []
    for label in labels.unique():
        rows = labels == label
        visible, infrared = rows & (modalities == 0), rows & (modalities == 1)
        if visible.any() and infrared.any():
            terms.append(1 - F.cosine_similarity(prompts[visible].mean(0), prompts[infrared].mean(0), dim=0))
    return torch.stack(terms).mean() if terms else prompts.sum() * 0.0
