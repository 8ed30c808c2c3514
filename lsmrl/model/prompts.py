"""Modality-shared identity prompts (LSMRL Sec. 3.3, following CLIP-ReID's prompt learner).

Each training identity ``i`` owns ``n_ctx`` learnable token embeddings that
replace the ``X`` placeholders of a template such as
``"a photo of a X X X X person."``. The same identity prompt serves the
visible and the infrared tracklets of that identity (modality-shared), so the
text space gives both modalities one semantic anchor. The prefix and suffix
token embeddings are fixed buffers (CLIP-ReID); the text encoder stays frozen.
They are computed from the CLIP's token embedding *after* its weights are
loaded, and saved in checkpoints (computed from the random initialisation
instead, prompt features after loading would be wrong);
:meth:`PromptLearner.rebuild_template` recomputes them for checkpoints that
lack them.

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
        self.start = start
        self.n_ctx = n_ctx
        self.template = template
        width = clip.token_embedding.weight.shape[-1]
        self.register_buffer("tokens", tokens, persistent=False)
        self.register_buffer("prefix", torch.zeros(1, start, width))
        self.register_buffer("suffix", torch.zeros(1, tokens.shape[1] - start - n_ctx, width))
        self.rebuild_template(clip)
        self.identity_context = nn.Parameter(torch.randn(num_classes, n_ctx, width) * 0.02)

    @torch.no_grad()
    def rebuild_template(self, clip: nn.Module) -> None:
        """(Re)compute the fixed prefix/suffix embeddings from ``clip``'s current token embedding."""
        embedding = clip.token_embedding(self.tokens.to(clip.token_embedding.weight.device))  # (1, L, width)
        self.prefix.copy_(embedding[:, :self.start])
        self.suffix.copy_(embedding[:, self.start + self.n_ctx:])

    @property
    def num_classes(self) -> int:
        return self.identity_context.shape[0]

    def forward(self, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt embeddings (N, L, width) and their token ids (N, L) for identity ``labels``."""
        return self.compose(self.identity_context[labels])

    def compose(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The template around any pseudo-word embeddings ``context`` (N, n_ctx, width): prompts and token ids."""
        count = context.shape[0]
        prefix = self.prefix.to(context.dtype).expand(count, -1, -1)
        suffix = self.suffix.to(context.dtype).expand(count, -1, -1)
        return torch.cat([prefix, context, suffix], dim=1), self.tokens.expand(count, -1)


class TextEncoder(nn.Module):
    """CLIP's text transformer applied to prompt *embeddings* (not token ids)."""

    def __init__(self, clip: nn.Module):
        super().__init__()
        self._clip = (clip,)  # shared with the model; not registered twice

    def forward(self, prompts: torch.Tensor, tokens: torch.Tensor, every_token: bool = False):
        """Projected end-of-text feature (N, D); with ``every_token`` also every token's (N, L, D)."""
        clip = self._clip[0]
        x = prompts + clip.positional_embedding.to(prompts.dtype)
        x = clip.transformer(x, attn_mask=clip.attn_mask)
        x = clip.ln_final(x)
        end = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]  # end-of-text token
        if every_token:
            return end @ clip.text_projection, x @ clip.text_projection
        return end @ clip.text_projection
