"""Modality-shared identity prompts (LSMRL Sec. 3.3, following CLIP-ReID's prompt learner).

Each training identity ``i`` owns ``n_ctx`` learnable token embeddings that
replace the ``X`` placeholders of a template such as
``"a photo of a X X X X person."``. The same identity prompt serves the
visible and the infrared tracklets of that identity (modality-shared), so the
text space gives both modalities one semantic anchor. The prefix and suffix
token embeddings are fixed buffers (CLIP-ReID); the text encoder stays frozen.

Inference never needs the identity: the prompts are used in training (stage 1
learns them, stage 2 uses them as targets) and, once encoded, as the bank that
semantic diffusion attends over (:mod:`lsmrl.model.semantic_diffusion`).
"""

from __future__ import annotations

import torch
from torch import nn


class PromptLearner(nn.Module):
    """Learnable per-identity context tokens inside a fixed template."""

    def __init__(self, clip: nn.Module, tokenizer, num_classes: int, template: str, n_ctx: int = 4):
        super().__init__()
        placeholder = tokenizer("x")[0, 1].item()  # id of the placeholder word
        tokens = tokenizer(template)
        positions = (tokens[0] == placeholder).nonzero().flatten().tolist()
        if len(positions) != n_ctx or positions != list(range(positions[0], positions[0] + n_ctx)):
            raise ValueError(
                f"prompt template {template!r} must contain exactly {n_ctx} consecutive 'X' placeholders"
            )
        start = positions[0]
        with torch.no_grad():
            embedding = clip.token_embedding(tokens)  # (1, L, width)
        width = embedding.shape[-1]
        self.n_ctx = n_ctx
        self.template = template
        self.register_buffer("tokens", tokens, persistent=False)
        self.register_buffer("prefix", embedding[:, :start].clone(), persistent=False)
        self.register_buffer("suffix", embedding[:, start + n_ctx:].clone(), persistent=False)
        self.identity_context = nn.Parameter(torch.randn(num_classes, n_ctx, width) * 0.02)

    @property
    def num_classes(self) -> int:
        return self.identity_context.shape[0]

    def forward(self, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt embeddings (N, L, width) and their token ids (N, L) for identity ``labels``."""
        context = self.identity_context[labels]
        count = context.shape[0]
        prompts = torch.cat([self.prefix.expand(count, -1, -1), context, self.suffix.expand(count, -1, -1)], dim=1)
        return prompts, self.tokens.expand(count, -1)


class TextEncoder(nn.Module):
    """CLIP's text transformer applied to prompt *embeddings* (not token ids)."""

    def __init__(self, clip: nn.Module):
        super().__init__()
        self._clip = (clip,)  # shared with the model; not registered twice

    def forward(self, prompts: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        clip = self._clip[0]
        x = prompts + clip.positional_embedding.to(prompts.dtype)
        x = clip.transformer(x, attn_mask=clip.attn_mask)
        x = clip.ln_final(x)
        x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]  # end-of-text token
        return x @ clip.text_projection
