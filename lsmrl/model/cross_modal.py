"""CMI: bidirectional cross-modal interaction (LSMRL Sec. 3.4).

The paper removes the modality gap left after SD with "bidirectional
cross-modal self-attention". A test query is a single tracklet of one modality
with no label and no paired sample, so it cannot attend to "its" other-modality
partner. Our choice (design.md §6): each modality keeps a **memory of
prototypes of the other modality**, one per training identity, and a feature
attends to the other modality's memory:

    visible  f_v -> f_v + g_v * C_v(MHA(LN(f_v), LN(M_infrared)))   (visible to infrared)
    infrared f_i -> f_i + g_i * C_i(MHA(LN(f_i), LN(M_visible)))    (infrared to visible)

``C_m`` (``centred``, the default) subtracts the modality's mean residual
(:class:`~lsmrl.model.centring.ModalityCentre`). Without it, the CMI
residual measured 27-36% one constant vector per modality at test time: with
a fixed memory and a soft attention, the attended prototype mix hardly
depends on the query, so CMI learnt a per-modality offset. Centred, only the
part of the attention that depends on the query moves the feature: a query
is pulled towards the other-modality prototypes of the identities it
resembles. ``centred=False`` is the uncentred operator (checkpoints trained with it).

The memories are buffers. In training they follow an exponential moving
average of the detached input features of each identity and modality (first
sighting copies), gathered over all ranks under DDP so every rank applies
the same update. After training,
:func:`lsmrl.engine.calibrate.calibrate_modules` rebuilds them from a clean
eval-mode pass over the training set (the training-time average was of
augmented, partly grey visible tracklets) and re-estimates the centres. At
test time they are fixed, so any single query of either modality is processed
on its own. ``share_weights`` uses one attention for both directions. Rows of
the memory not yet seen are masked out. The attention weights (B, M) are
returned.

Train/test consistency [our choice]: in training, ``exclude`` masks each
tracklet's own identity in the other modality's memory; at test time the
query's identity is never in the memory (test identities are unseen), so
CMI must learn to use *similar* identities' prototypes, not its own.
"""

from __future__ import annotations

import torch
from torch import nn

from lsmrl.model.centring import ModalityCentre, all_gather_rows

VISIBLE_ID, INFRARED_ID = 0, 1


class CrossModalInteraction(nn.Module):
    def __init__(self, dim: int, num_prototypes: int, heads: int = 4, gate_init: float = 0.1,
                 momentum: float = 0.9, share_weights: bool = False, centred: bool = True):
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
        self.centre = ModalityCentre(dim) if centred else None

    @torch.no_grad()
    def update_memory(self, features: torch.Tensor, labels: torch.Tensor, modalities: torch.Tensor) -> None:
        """EMA update of the prototypes of the identities and modalities present in the (global) batch."""
        features = all_gather_rows(features.detach().to(self.memory.dtype))  # autocast may hand in bf16
        labels, modalities = all_gather_rows(labels), all_gather_rows(modalities)
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

    @torch.no_grad()
    def set_memory(self, memory: torch.Tensor, filled: torch.Tensor) -> None:
        """Replace the prototypes (2, M, D) and their filled mask (2, M) (the post-training rebuild)."""
        self.memory.copy_(memory.to(self.memory.dtype))
        self.filled.copy_(filled)

    def attend(self, features: torch.Tensor, modalities: torch.Tensor, exclude: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The raw (uncentred) attention output (B, D), attention weights (B, M), and which rows attended (B,)."""
        attended_all = features.new_zeros(features.shape)
        weights = features.new_zeros(features.shape[0], self.memory.shape[1], dtype=torch.float32)
        active = torch.zeros(features.shape[0], dtype=torch.bool, device=features.device)
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
            attended_all[row_ids] = attended.squeeze(1).to(attended_all.dtype)
            weights[row_ids] = attn.squeeze(1).to(weights.dtype)
            active[row_ids] = True
        return attended_all, weights, active

    def forward(self, features: torch.Tensor, modalities: torch.Tensor, exclude: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``features`` (B, D), ``modalities`` (B,) -> refined features (B, D), attention (B, M).

        ``exclude`` (B,) optional memory row per tracklet to leave out (its own identity in training).
        """
        attended, weights, active = self.attend(features, modalities, exclude)
        if not active.any():
            return features, weights
        rows = active.nonzero().flatten()
        part = attended[rows]
        if self.centre is not None:  # centred over the rows that attended (early in training some cannot)
            part = self.centre(part, modalities[rows])
        part = part * self.gate[modalities[rows]].to(part.dtype)
        residual = torch.zeros_like(attended).index_put((rows,), part)
        return features + residual.to(features.dtype), weights
