"""CMI: bidirectional cross-modal interaction (LSMRL Sec. 3.4).

The paper removes the modality gap left after SD with "bidirectional
cross-modal self-attention". A test query is a single tracklet of one modality
with no label and no paired sample, so it cannot attend to "its" other-modality
partner. Our choice (design.md §6): each modality keeps a **memory of
prototypes of the other modality**, one per training identity, and a feature
attends to the other modality's memory:

    visible  f_v -> f_v + g_v * MHA(LN(f_v), LN(M_infrared))   (visible to infrared)
    infrared f_i -> f_i + g_i * MHA(LN(f_i), LN(M_visible))    (infrared to visible)

The memories are buffers updated in training by an exponential moving average
of the detached input features of each identity and modality (first sighting
copies); they are saved in the checkpoint. At test time they are fixed, so any
single query of either modality can be processed, identically to training.
``share_weights`` uses one attention for both directions. Rows of the memory
not yet seen are masked out. The attention weights (B, M) are returned.

Train/test consistency [our choice]: in training, ``exclude`` masks each
tracklet's own identity in the other modality's memory; at test time the
query's identity is never in the memory (test identities are unseen), so
CMI must learn to use *similar* identities' prototypes, not its own.
"""

from __future__ import annotations

import torch
from torch import nn

VISIBLE_ID, INFRARED_ID = 0, 1


class CrossModalInteraction(nn.Module):
    def __init__(self, dim: int, num_prototypes: int, heads: int = 4, gate_init: float = 0.1,
                 momentum: float = 0.9, share_weights: bool = False):
        super().__init__()
        self.momentum = momentum
        # memory[m] holds prototypes of modality m (0 visible, 1 infrared), one per training identity
        self.register_buffer("memory", torch.zeros(2, num_prototypes, dim))
        self.register_buffer("filled", torch.zeros(2, num_prototypes, dtype=torch.bool))
        self.norm_query = nn.LayerNorm(dim)
        self.norm_memory = nn.LayerNorm(dim)
        to_infrared = nn.MultiheadAttention(dim, heads, batch_first=True)
        to_visible = to_infrared if share_weights else nn.MultiheadAttention(dim, heads, batch_first=True)
        self.attend_infrared = to_infrared  # used by visible features
        self.attend_visible = to_visible  # used by infrared features
        self.gate = nn.Parameter(torch.full((2, dim), gate_init))

    @torch.no_grad()
    def update_memory(self, features: torch.Tensor, labels: torch.Tensor, modalities: torch.Tensor) -> None:
        """EMA update of the prototypes of the identities and modalities present in a batch."""
        features = features.detach().to(self.memory.dtype)  # autocast may hand in bf16; the memory stays fp32
        for modality in (VISIBLE_ID, INFRARED_ID):
            mask = modalities == modality
            if not mask.any():
                continue
            for label in labels[mask].unique():
                mean = features[mask & (labels == label)].mean(dim=0)
                if self.filled[modality, label]:
                    self.memory[modality, label].mul_(self.momentum).add_((1 - self.momentum) * mean)
                else:
                    self.memory[modality, label] = mean
                    self.filled[modality, label] = True

    def forward(self, features: torch.Tensor, modalities: torch.Tensor, exclude: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``features`` (B, D), ``modalities`` (B,) -> refined features (B, D), attention (B, M).

        ``exclude`` (B,) optional memory row per tracklet to leave out (its own identity in training).
        """
        out = features.clone()
        weights = features.new_zeros(features.shape[0], self.memory.shape[1])
        for modality, attention in ((VISIBLE_ID, self.attend_infrared), (INFRARED_ID, self.attend_visible)):
            rows = modalities == modality
            other = 1 - modality
            if not rows.any() or not self.filled[other].any():
                continue  # nothing to attend to yet (an untrained memory): pass through
            query = self.norm_query(features[rows]).unsqueeze(1)
            memory = self.norm_memory(self.memory[other]).unsqueeze(0).expand(query.shape[0], -1, -1)
            mask = (~self.filled[other]).unsqueeze(0).expand(query.shape[0], -1).clone()
            if exclude is not None:
                mask[torch.arange(query.shape[0], device=mask.device), exclude[rows]] = True
            usable = ~mask.all(dim=1)  # a row with nothing left to attend to passes through
            if not usable.any():
                continue
            attended, attn = attention(query[usable], memory[usable], memory[usable], key_padding_mask=mask[usable],
                                       need_weights=True, average_attn_weights=True)
            row_ids = rows.nonzero().flatten()[usable]
            out[row_ids] = (features[row_ids] + self.gate[modality] * attended.squeeze(1)).to(out.dtype)
            weights[row_ids] = attn.squeeze(1).to(weights.dtype)
        return out, weights
