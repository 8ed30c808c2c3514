"""Mixed precision for training: bf16 autocast on CPUs with native bf16, fp16 (+ loss scaling) on CUDA.

On a CPU with ``avx512_bf16`` (or AMX) a bf16 matmul runs about 4x faster than fp32, and a training step
of the miniature model about 2.3x faster (design.md §5). Where the CPU has no native bf16, autocast would
emulate it and be *slower* than fp32, so those CPUs train in fp32. ``LSMRL_FP32=1`` (or ``enabled=False``)
forces fp32 everywhere, e.g. to check that a result does not depend on the precision.

Weights, optimizer state and checkpoints stay fp32 in every mode: autocast only changes the precision
of the operations inside the forward pass.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

# one detection of native bf16 and one LSMRL_FP32 switch for training and inference
from lsmrl.device import FORCE_FP32_ENV, cpu_has_native_bf16, fp32_forced

__all__ = ["FORCE_FP32_ENV", "Precision", "cpu_has_native_bf16", "fp32_forced", "training_precision"]


@dataclass(frozen=True)
class Precision:
    """What autocast does on one device: ``dtype`` None means plain fp32."""

    device_type: str
    dtype: torch.dtype | None

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    @property
    def needs_grad_scaler(self) -> bool:
        return self.dtype == torch.float16  # bf16 has fp32's exponent range: no loss scaling needed

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)


def training_precision(device: torch.device | str, enabled: bool = True) -> Precision:
    """The precision to train in on ``device``: bf16 (CPU with native bf16), fp16 (CUDA), else fp32.

    ``enabled=False`` or the environment variable ``LSMRL_FP32=1`` give fp32.
    """
    device = torch.device(device)
    if not enabled or fp32_forced():
        return Precision(device.type, None)
    if device.type == "cpu":
        return Precision("cpu", torch.bfloat16 if cpu_has_native_bf16() else None)
    if device.type == "cuda":
        return Precision("cuda", torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    return Precision(device.type, None)
