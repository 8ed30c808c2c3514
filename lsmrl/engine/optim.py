"""Optimiser and learning-rate schedule: AdamW, linear warm-up then cosine decay (VLD / CLIP-ReID)."""

from __future__ import annotations

import math

import torch


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int,
                  floor: float = 0.01) -> torch.optim.lr_scheduler.LambdaLR:
    """Multiplier: linear from 1/warmup to 1 over ``warmup_steps``, then cosine down to ``floor``."""

    def factor(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def adamw(groups: list[dict], lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW without weight decay on biases, norms and embeddings-like 1-D tensors."""
    param_groups = []
    for group in groups:
        decay = [p for p in group["params"] if p.requires_grad and p.ndim >= 2]
        no_decay = [p for p in group["params"] if p.requires_grad and p.ndim < 2]
        scale = group.get("lr_scale", 1.0)
        if decay:
            param_groups.append({"params": decay, "lr": lr * scale, "weight_decay": weight_decay})
        if no_decay:
            param_groups.append({"params": no_decay, "lr": lr * scale, "weight_decay": 0.0})
    return torch.optim.AdamW(param_groups, lr=lr, weight_decay=weight_decay)
