"""Identity-level losses: label-smoothed identity cross-entropy and batch-hard triplet.

LSMRL (arXiv 2601.12062) trains with "identity-level" losses beside its two
modality-level ones; the text we could read names no formulas, so these follow
the CLIP-ReID / VLD baselines it builds on (design.md §2, §6):

- :class:`CrossEntropyLabelSmooth`: identity classification with label
  smoothing (Szegedy et al., CVPR 2016, "Rethinking the Inception
  Architecture"), as in CLIP-ReID's ID loss; epsilon 0.1.
- :class:`TripletLoss`: batch-hard triplet (Hermans et al., "In Defense of the
  Triplet Loss for Person Re-Identification", 2017) with margin 0.3. With
  ``cross_modal=True`` (our default for VVI-ReID) the hardest positive and the
  hardest negative of an anchor are mined among samples of the *other*
  modality only, as in cross-modality ReID practice (e.g. the bi-directional
  top-ranking loss of Ye et al., IJCAI 2018): the loss then pulls a visible
  tracklet towards its infrared views rather than towards easier
  same-modality ones. This choice is ours (design.md §6).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class CrossEntropyLabelSmooth(nn.Module):
    """Cross-entropy with label smoothing: target = (1 - eps) * one_hot + eps / K.

    ``forward(logits (N, K), targets (N,) long) -> scalar`` (mean over the batch).
    With ``epsilon=0`` it equals ``F.cross_entropy``; in general it equals
    ``F.cross_entropy(..., label_smoothing=epsilon)``.
    """

    def __init__(self, num_classes: int, epsilon: float = 0.1) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if not 0.0 <= epsilon < 1.0:
            raise ValueError(f"epsilon must be in [0, 1), got {epsilon}")
        self.num_classes = num_classes
        self.epsilon = epsilon

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if logits.ndim != 2 or logits.shape[1] != self.num_classes:
            raise ValueError(f"logits must be (N, {self.num_classes}), got {tuple(logits.shape)}")
        log_probs = F.log_softmax(logits, dim=1)
        smooth = torch.full_like(log_probs, self.epsilon / self.num_classes)
        smooth.scatter_(1, targets.long().unsqueeze(1), 1.0 - self.epsilon + self.epsilon / self.num_classes)
        return -(smooth * log_probs).sum(dim=1).mean()

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, epsilon={self.epsilon}"


def pairwise_distance(x: torch.Tensor, y: torch.Tensor, metric: str = "euclidean") -> torch.Tensor:
    """(M, D) x (N, D) -> (M, N) distances.

    ``"euclidean"``: ``sqrt(max(|x|^2 + |y|^2 - 2 x.y, 1e-12))`` (the clamp keeps
    the gradient finite at zero distance); ``"cosine"``: ``1 - cos(x, y)``.
    """
    if metric == "euclidean":
        squared = (x * x).sum(1, keepdim=True) + (y * y).sum(1)[None, :] - 2.0 * (x @ y.T)
        return squared.clamp_min(1e-12).sqrt()
    if metric == "cosine":
        return 1.0 - F.normalize(x, dim=1) @ F.normalize(y, dim=1).T
    raise ValueError(f"metric must be 'euclidean' or 'cosine', got {metric!r}")


def zero_loss(reference: torch.Tensor) -> torch.Tensor:
    """A scalar 0 that stays in ``reference``'s graph (so ``backward()`` still works)."""
    return reference.sum() * 0.0


class TripletLoss(nn.Module):
    """Batch-hard triplet loss, optionally mining across modalities.

    For every anchor ``a`` in the batch:
    ``d_ap = max distance to a positive`` (same label, not ``a`` itself),
    ``d_an = min distance to a negative`` (another label), and the anchor's loss
    is ``max(0, d_ap - d_an + margin)``; the loss is the mean over anchors that
    have at least one positive and one negative. With ``margin=None`` the
    soft-margin form ``log(1 + exp(d_ap - d_an))`` is used instead.

    With ``cross_modal=True`` positives and negatives are taken only from the
    *other* modality than the anchor's (anchors come from both modalities), so
    ``modalities`` is required; with ``cross_modal=False`` all samples are
    candidates and ``modalities`` is ignored.

    ``forward(features (N, D), labels (N,), modalities (N,) bool/int with
    1 = infrared, return_stats=False)`` returns the loss, or with
    ``return_stats=True`` a tuple ``(loss, fraction of satisfied triplets)``,
    where a triplet is satisfied when ``d_an >= d_ap + margin`` (its hinge is 0;
    ``d_an > d_ap`` for the soft margin). A batch without any valid anchor gives
    a zero loss that keeps ``requires_grad``.
    """

    def __init__(self, margin: float | None = 0.3, cross_modal: bool = True, metric: str = "euclidean") -> None:
        super().__init__()
        if margin is not None and margin < 0:
            raise ValueError(f"margin must be >= 0 or None (soft margin), got {margin}")
        if metric not in ("euclidean", "cosine"):
            raise ValueError(f"metric must be 'euclidean' or 'cosine', got {metric!r}")
        self.margin = margin
        self.cross_modal = cross_modal
        self.metric = metric

    def mine(
        self, features: torch.Tensor, labels: torch.Tensor, modalities: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Hardest positive and negative per anchor.

        Returns ``(d_ap, d_an, pos_index, neg_index, valid)``, all (N,); entries
        where ``valid`` is False (no positive or no negative) are meaningless.
        """
        if features.ndim != 2:
            raise ValueError(f"features must be (N, D), got {tuple(features.shape)}")
        n = features.shape[0]
        labels = labels.reshape(-1).to(features.device)
        if labels.shape[0] != n:
            raise ValueError(f"labels must have {n} entries, got {labels.shape[0]}")
        dist = pairwise_distance(features, features, self.metric)
        same = labels[:, None] == labels[None, :]
        candidate = ~torch.eye(n, dtype=torch.bool, device=features.device)
        if self.cross_modal:
            if modalities is None:
                raise ValueError("cross_modal=True needs modalities (N,), 1 = infrared")
            modalities = modalities.reshape(-1).to(features.device).bool()
            if modalities.shape[0] != n:
                raise ValueError(f"modalities must have {n} entries, got {modalities.shape[0]}")
            candidate &= modalities[:, None] != modalities[None, :]
        is_pos = same & candidate
        is_neg = ~same & candidate

        d_ap, pos_index = dist.masked_fill(~is_pos, float("-inf")).max(dim=1)
        d_an, neg_index = dist.masked_fill(~is_neg, float("inf")).min(dim=1)
        valid = is_pos.any(dim=1) & is_neg.any(dim=1)
        return d_ap, d_an, pos_index, neg_index, valid

    def forward(
        self,
        features: torch.Tensor,
        labels: torch.Tensor,
        modalities: torch.Tensor | None = None,
        return_stats: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, float]:
        d_ap, d_an, _, _, valid = self.mine(features, labels, modalities)
        if not bool(valid.any()):
            loss = zero_loss(features)
            return (loss, 0.0) if return_stats else loss
        d_ap, d_an = d_ap[valid], d_an[valid]
        if self.margin is None:
            loss = F.softplus(d_ap - d_an).mean()
            satisfied = (d_an > d_ap).float().mean().item()
        else:
            loss = F.relu(d_ap - d_an + self.margin).mean()
            satisfied = (d_an >= d_ap + self.margin).float().mean().item()
        return (loss, satisfied) if return_stats else loss

    def extra_repr(self) -> str:
        return f"margin={self.margin}, cross_modal={self.cross_modal}, metric={self.metric!r}"
