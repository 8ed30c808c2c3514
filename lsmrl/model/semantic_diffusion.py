"""SD: semantic diffusion of modality-shared prompts into visual features (LSMRL Sec. 3.3).

Two operators; ``LSMRLConfig.sd_mode`` picks one.

**"generated"** (the default, :class:`GeneratedPromptDiffusion`; design.md §2 and §6):
modality-shared prompts *generated per sequence*. A shared inversion network maps the sequence feature
``f`` to the ``n_ctx`` pseudo-word embeddings of the prompt template ("a photo of a X X X X person."); the
frozen CLIP text encoder encodes the prompt; each frame's feature attends to the prompt's token features
(cross-attention), and the per-frame results, averaged, are the residual:

    w = Inv(f);  E = TextEncoder(template(w));  r = mean_t MHA(LN(x_t), LN(E));  f_sd = f + g * C_m(r)

Training (:mod:`lsmrl.engine.stage2`) makes the prompt *modality-shared* and *identity-bearing*: its
sentence feature is classified against the bank of learnt stage-1 identity prompts (close to the
identity's prompt), and a visible and an infrared tracklet of one identity are pulled to the same prompt.
``C_m`` subtracts the modality's mean residual (:class:`~lsmrl.model.centring.ModalityCentre`), so what SD
adds is what differs between inputs. It needs no identity at test time and differs for every input. This
follows the line of the same group's image-level CLIP4VI-ReID (text semantics generated from images,
then injected into the infrared features) and of PromptSG-style inversion. ``sd_attention`` (B, C) is the
softmax similarity of the generated prompt to the identity prompts (which identities it reads as).

**"bank"** (checkpoints trained with it) is the operator below. At test time its bank is constant, so
44-60% of its residual energy measured the same vector for every tracklet of a modality, and it lowered
mAP (11.2 -> 10.8, docs/design.md §2).

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

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from lsmrl.model.centring import ModalityCentre


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


class PromptInversion(nn.Module):
    """Sequence feature (B, D) -> ``n_ctx`` pseudo-word embeddings (B, n_ctx, width) of the text encoder."""

    def __init__(self, dim: int, width: int, n_ctx: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or 2 * dim
        self.n_ctx, self.width = n_ctx, width
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, n_ctx * width))
        # Starts at the template's own words' scale: a small input-dependent part around a learnt mean word
        # (set to the mean of the stage-1 identity contexts by :meth:`start_from`).
        nn.init.normal_(self.net[-1].weight, std=0.02 / hidden**0.5)
        nn.init.zeros_(self.net[-1].bias)

    @torch.no_grad()
    def start_from(self, contexts: torch.Tensor) -> None:
        """Centre the generated words on the mean of the learnt identity contexts (C, n_ctx, width)."""
        self.net[-1].bias.copy_(contexts.float().mean(dim=0).reshape(-1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features).reshape(features.shape[0], self.n_ctx, self.width)


# encode(pseudo_words (B, n_ctx, width)) -> sentence feature (B, D), token features (B, L, D), padding mask (B, L)
PromptEncoder = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


class GeneratedPromptDiffusion(nn.Module):
    """SD with a prompt generated from each sequence (see the module docstring, "generated")."""

    def __init__(self, dim: int, num_prompts: int, text_width: int, n_ctx: int, heads: int = 4,
                 gate_init: float = 0.1):
        super().__init__()
        self.inversion = PromptInversion(dim, text_width, n_ctx)
        # the learnt identity prompts (stage 1): the target of the generated prompt, and what sd_attention ranks
        self.register_buffer("prompt_bank", torch.zeros(num_prompts, dim))
        self.register_buffer("bank_ready", torch.zeros((), dtype=torch.bool))
        self.norm_query = nn.LayerNorm(dim)
        self.norm_tokens = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.gate = nn.Parameter(torch.full((dim,), gate_init))
        self.centre = ModalityCentre(dim)
        self.register_buffer("logit_scale", torch.tensor(1 / 0.07))  # CLIP's initial temperature for sd_attention

    @torch.no_grad()
    def set_prompt_bank(self, prompt_features: torch.Tensor, logit_scale: float | None = None) -> None:
        if prompt_features.shape != self.prompt_bank.shape:
            raise ValueError(f"prompt bank must be {tuple(self.prompt_bank.shape)}, got {tuple(prompt_features.shape)}")
        self.prompt_bank.copy_(prompt_features)
        self.bank_ready.fill_(True)
        if logit_scale is not None:
            self.logit_scale.fill_(logit_scale)

    def raw_residual(self, frame_features: torch.Tensor, sequence: torch.Tensor, encode: PromptEncoder
                     ) -> dict[str, torch.Tensor]:
        """The uncentred residual (B, D), the generated prompt's sentence feature (B, D) and its words."""
        words = self.inversion(sequence)
        sentence, tokens, padding = encode(words)
        keys = self.norm_tokens(tokens)
        queries = self.norm_query(frame_features)  # (B, T, D): every frame reads the prompt
        attended, _ = self.attention(queries, keys, keys, key_padding_mask=padding, need_weights=False)
        return {"residual": attended.mean(dim=1), "prompt": sentence, "words": words}

    def prompt_attention(self, sentence: torch.Tensor) -> torch.Tensor:
        """Softmax similarity (B, C) of generated prompts to the identity prompt bank."""
        if not bool(self.bank_ready):
            raise RuntimeError("semantic diffusion has no prompt bank yet: call model.refresh_prompt_bank()")
        similarity = F.normalize(sentence.float(), dim=-1) @ F.normalize(self.prompt_bank.float(), dim=-1).t()
        return (self.logit_scale * similarity).softmax(dim=-1)

    def forward(self, frame_features: torch.Tensor, sequence: torch.Tensor, modalities: torch.Tensor,
                encode: PromptEncoder) -> dict[str, torch.Tensor]:
        """``features`` (diffused, B x D), ``attention`` (B, C), ``prompt`` (B, D), ``words``."""
        raw = self.raw_residual(frame_features, sequence, encode)
        residual = self.centre(raw["residual"], modalities) * self.gate.to(raw["residual"].dtype)
        return {"features": sequence + residual.to(sequence.dtype), "attention": self.prompt_attention(raw["prompt"]),
                "prompt": raw["prompt"], "words": raw["words"]}
