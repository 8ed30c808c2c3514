"""SD: semantic diffusion of modality-shared prompts into visual features (LSMRL Sec. 3.3).

The paper diffuses CLIP-generated, modality-shared language prompts into the
visible and the infrared sequence features to give both a common semantic
anchor ("preliminary modal consistency"). Its exact operator was not readable;
our choice (design.md §6):

    f_sd = f + g * MHA(q = LN(f), k = v = LN(P))

with ``P`` (C, D) the bank of encoded identity prompts of the C training
identities, ``g`` a learnt per-channel gate (initialised small so SD starts
close to the identity map) and multi-head cross-attention. The same operator
is applied to both modalities (the prompts are shared, so the anchor is too).

**At test time the identity is unknown**, so a tracklet attends over the
*whole* prompt bank, exactly as in training: its feature is moved towards the
language description of the training identities it resembles. The bank is a
persistent buffer filled from the prompt learner (``set_prompt_bank``) and
saved in checkpoints, so inference needs no text encoder. The attention
weights (B, C), averaged over heads, are returned for analysis.

Train/test consistency [our choice]: in training, ``exclude`` masks each
tracklet's *own* identity prompt, so that SD learns to work as it must at test
time, on identities whose prompt is not in the bank.
"""

from __future__ import annotations

import torch
from torch import nn


class SemanticDiffusion(nn.Module):
    def __init__(self, dim: int, num_prompts: int, heads: int = 4, gate_init: float = 0.1):
        super().__init__()
        self.register_buffer("prompt_bank", torch.zeros(num_prompts, dim))
        self.register_buffer("bank_ready", torch.zeros((), dtype=torch.bool))
        self.norm_query = nn.LayerNorm(dim)
        self.norm_bank = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.gate = nn.Parameter(torch.full((dim,), gate_init))

    @torch.no_grad()
    def set_prompt_bank(self, prompt_features: torch.Tensor) -> None:
        if prompt_features.shape != self.prompt_bank.shape:
            raise ValueError(f"prompt bank must be {tuple(self.prompt_bank.shape)}, got {tuple(prompt_features.shape)}")
        self.prompt_bank.copy_(prompt_features)
        self.bank_ready.fill_(True)

    def forward(self, features: torch.Tensor, exclude: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``features`` (B, D) -> diffused features (B, D), attention over the prompt bank (B, C).

        ``exclude`` (B,) optional prompt index per row to leave out (its own identity in training).
        """
        if not bool(self.bank_ready):
            raise RuntimeError("semantic diffusion has no prompt bank yet: call model.refresh_prompt_bank()")
        bank = self.norm_bank(self.prompt_bank).unsqueeze(0).expand(features.shape[0], -1, -1)
        mask = None
        if exclude is not None and self.prompt_bank.shape[0] > 1:
            mask = torch.zeros(features.shape[0], self.prompt_bank.shape[0], dtype=torch.bool,
                               device=features.device)
            mask[torch.arange(features.shape[0], device=features.device), exclude] = True
        diffused, weights = self.attention(self.norm_query(features).unsqueeze(1), bank, bank,
                                           key_padding_mask=mask, need_weights=True, average_attn_weights=True)
        return features + self.gate * diffused.squeeze(1), weights.squeeze(1)
