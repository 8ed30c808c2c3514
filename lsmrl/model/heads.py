"""BNNeck and identity classifier (bag of tricks for ReID, Luo et al. 2019; as in CLIP-ReID).

The triplet and contrastive losses see the feature before batch norm; the
identity classifier sees it after; retrieval uses the normalised feature after
batch norm. The classifier has no bias and the BN shift is frozen, as in BNNeck.
"""

from __future__ import annotations

import torch
from torch import nn


class BNNeck(nn.Module):
    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(dim)
        self.bn.bias.requires_grad_(False)
        nn.init.constant_(self.bn.weight, 1.0)
        nn.init.constant_(self.bn.bias, 0.0)
        self.classifier = nn.Linear(dim, num_classes, bias=False) if num_classes > 0 else None
        if self.classifier is not None:
            nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        normed = self.bn(features)
        logits = self.classifier(normed) if self.classifier is not None and self.training else None
        return normed, logits
