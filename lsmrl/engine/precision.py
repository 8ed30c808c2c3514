"""Mixed precision for training: bf16 autocast where it measures faster, fp16 (+ loss scaling) on CUDA.

A CPU's flags alone do not decide it: with ``avx512_bf16`` a bf16 matmul measured 2.7x fp32 on an AMD EPYC
(a miniature training step 1.2-1.5x), while on an Intel Xeon without AMX bf16 ran at 0.4-0.8x. So training
resolves ``auto`` exactly as inference does (:func:`lsmrl.device.inference_precision`): the process's
``LSMRL_PRECISION`` first, then native bf16 *and* a measured matmul speed-up of at least
:data:`lsmrl.device.MIN_BF16_SPEEDUP`. ``enabled=False`` or ``requested="fp32"`` give fp32; ``requested="bf16"``
gives bf16 on any CPU (emulated where it is not native: correct, slower).

Weights, optimizer state and checkpoints stay fp32 in every mode: autocast only changes the precision
of the operations inside the forward pass.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

# one detection of native bf16, one measurement and one LSMRL_PRECISION switch for training and inference
from lsmrl.device import (
    FORCE_FP32_ENV,
    PRECISION_ENV,
    PRECISIONS,
    bf16_matmul_speedup,
    cpu_has_native_bf16,
    inference_precision,
    precision_setting,
)

__all__ = ["FORCE_FP32_ENV", "PRECISION_ENV", "Precision", "precision_record", "training_precision"]


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


def training_precision(device: torch.device | str, enabled: bool = True, requested: str = "auto",
                       flags: set[str] | None = None, speedup: float | None = None) -> Precision:
    """The precision to train in on ``device``.

    ``enabled=False`` or ``requested="fp32"``: fp32. ``requested="bf16"``: bf16 autocast. ``auto`` takes
    ``LSMRL_PRECISION`` (or ``LSMRL_FP32=1``) when set; else on a CPU bf16 where it is native and measures
    faster (``flags`` and ``speedup`` as in :func:`lsmrl.device.inference_precision`), else fp32; on CUDA bf16
    where supported, else fp16 with loss scaling.
    """
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r}; expected one of {PRECISIONS}")
    device = torch.device(device)
    if not enabled:
        return Precision(device.type, None)
    if device.type == "cpu":
        name = inference_precision(requested, device, flags=flags, speedup=speedup)
        return Precision("cpu", torch.bfloat16 if name == "bf16" else None)
    if device.type == "cuda":
        choice = requested if requested != "auto" else precision_setting()
        if choice == "fp32":
            return Precision("cuda", None)
        if choice == "bf16" or torch.cuda.is_bf16_supported():
            return Precision("cuda", torch.bfloat16)
        return Precision("cuda", torch.float16)
    return Precision(device.type, None)


def precision_record(precision: Precision) -> dict:
    """What a run log and a checkpoint sidecar record of the training precision and why it was chosen:
    the precision, the process setting, the CPU's native bf16 and (on a CPU) the measured bf16 matmul speed-up."""
    record = {"precision": precision.name, "setting": precision_setting(), "device": precision.device_type}
    if precision.device_type == "cpu":
        record["cpu_native_bf16"] = cpu_has_native_bf16()
        record["bf16_matmul_speedup"] = round(bf16_matmul_speedup(), 2) if record["cpu_native_bf16"] else None
    return record
