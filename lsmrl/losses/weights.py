"""How the training losses are weighted: :class:`LossWeights`.

LSMRL (arXiv 2601.12062) sums identity-level and modality-level losses; the
readable text gives no weights, so every default is 1.0 **[our choice]**:
an unweighted sum is the plain reading of the paper's "multi-loss system",
and VLD (the CLIP VVI-ReID predecessor) sums its ID and triplet terms with
weight 1. Note that CLIP-ReID's ViT config weights the ID loss 0.25 (triplet
1.0, image-to-text 1.0); set ``id=0.25`` to follow it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

import torch


@dataclass
class LossWeights:
    """Weight of each stage-2 loss term (a term with weight 0 is skipped)."""

    id: float = 1.0  # CrossEntropyLabelSmooth on the identity classifier
    triplet: float = 1.0  # TripletLoss (cross-modal batch-hard)
    i2t: float = 1.0  # image_text_cross_entropy of the STFL feature against the frozen prompts
    sd_prompt: float = 1.0  # SD's generated prompt classified against the identity prompts (image_text_cross_entropy)
    sd_modality: float = 1.0  # cross_modal_prompt_consistency of SD's generated prompts
    modality_center: float = 1.0  # hetero_center_loss
    modality_contrastive: float = 1.0  # cross_modal_contrastive_loss

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value < 0:
                raise ValueError(f"loss weight {f.name} must be >= 0, got {value}")

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def total(self, terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``sum(weight[name] * terms[name])`` over the given terms; unknown names raise ``KeyError``."""
        weights = self.as_dict()
        unknown = sorted(set(terms) - set(weights))
        if unknown:
            raise KeyError(f"unknown loss terms {unknown}; known: {sorted(weights)}")
        if not terms:
            raise ValueError("no loss terms given")
        total = next(iter(terms.values())).sum() * 0.0  # a zero in the graph, if every weight is 0
        for name, value in terms.items():
            if weights[name] != 0:
                total = total + weights[name] * value
        return total
