"""Per-modality centring of a module's residual, and the cross-rank helpers that keep buffers in sync under DDP.

SD and CMI add a residual ``r`` to the sequence feature. Uncentred, 44-60% (SD) and 27-36% (CMI) of that
residual's energy measured one vector per modality (docs/design.md §2): the modules mostly shifted each modality by a
constant, which the BNNeck could do for free, instead of doing something that depends on the input. So
both subtract a per-modality centre from their residual, like a batch norm without scaling: in training the
batch mean of each modality (gradients flow through it, as in batch norm) and an exponential moving
average of it; in eval that average, which :func:`lsmrl.engine.calibrate.calibrate_modules` re-estimates
after training from a clean eval-mode pass over the training set. What is left is, by construction, the
part of the residual that differs between inputs; whether it helps is what the ablation measures.

Under DDP every rank must apply the same buffer update (DDP runs with ``broadcast_buffers=False``, see
:mod:`lsmrl.engine.trainer`): :func:`all_gather_rows` and :func:`all_reduce_sum` make the update the one of
the global batch. Without an initialised process group they are the identity.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

NUM_MODALITIES = 2  # 0 visible, 1 infrared


def distributed_world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def all_gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` (N, ...) of every rank along dim 0 (same N on every rank; no gradient)."""
    if distributed_world() == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of ``tensor`` over the ranks (a new tensor; no gradient)."""
    if distributed_world() == 1:
        return tensor
    tensor = tensor.clone()
    dist.all_reduce(tensor)
    return tensor


class ModalityCentre(nn.Module):
    """Subtracts a per-modality mean from a residual (B, D): batch mean in training, running mean in eval."""

    def __init__(self, dim: int, momentum: float = 0.1):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("mean", torch.zeros(NUM_MODALITIES, dim))
        self.register_buffer("ready", torch.zeros(NUM_MODALITIES, dtype=torch.bool))

    def forward(self, residual: torch.Tensor, modalities: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return residual - self.mean[modalities].to(residual.dtype)
        centred = residual.clone()
        sums = residual.new_zeros(NUM_MODALITIES, residual.shape[1], dtype=torch.float32)
        counts = residual.new_zeros(NUM_MODALITIES, dtype=torch.float32)
        for modality in range(NUM_MODALITIES):
            rows = modalities == modality
            if rows.any():
                centred[rows] = residual[rows] - residual[rows].mean(dim=0, keepdim=True)
                sums[modality] = residual[rows].detach().float().sum(dim=0)
                counts[modality] = rows.sum()
        self._update(all_reduce_sum(sums), all_reduce_sum(counts))
        return centred

    @torch.no_grad()
    def _update(self, sums: torch.Tensor, counts: torch.Tensor) -> None:
        for modality in range(NUM_MODALITIES):
            if counts[modality] == 0:
                continue
            batch_mean = sums[modality] / counts[modality]
            if self.ready[modality]:
                self.mean[modality].lerp_(batch_mean, self.momentum)
            else:
                self.mean[modality].copy_(batch_mean)
                self.ready[modality] = True

    @torch.no_grad()
    def set_mean(self, modality: int, mean: torch.Tensor) -> None:
        """Set a modality's centre (a calibration pass over the training set)."""
        self.mean[modality].copy_(mean.float())
        self.ready[modality] = True
