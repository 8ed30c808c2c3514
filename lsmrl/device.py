"""The one device helper, the one seeding helper and the one inference-precision helper.

No other module calls ``.cuda()`` or picks a device on its own: everything goes
through :func:`get_device`, so the same code runs on a CPU-only machine and on a GPU.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def get_device(preferred: str | None = None) -> torch.device:
    """Return ``preferred`` if given, else ``cuda`` when available, else ``cpu``."""
    if preferred:
        return torch.device(preferred)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch (CPU and CUDA) so that a run can be repeated."""
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


# --------------------------------------------------------------------------- precision
PRECISIONS = ("auto", "bf16", "fp32")
#: The one process-wide precision switch: ``auto``, ``fp32`` or ``bf16``. It decides what every ``auto`` request
#: (inference and training) resolves to; a precision the code asks for by name is kept.
PRECISION_ENV = "LSMRL_PRECISION"
#: ``LSMRL_FP32=1`` is a synonym of ``LSMRL_PRECISION=fp32`` (``LSMRL_PRECISION`` wins when both are set).
FORCE_FP32_ENV = "LSMRL_FP32"
# /proc/cpuinfo flags of CPUs with native bf16 matmuls (AVX512-BF16 dot products, or AMX tiles)
_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def precision_setting() -> str:
    """The process's precision setting: ``LSMRL_PRECISION`` (auto/fp32/bf16), else fp32 where ``LSMRL_FP32`` is
    1/true/yes/on, else ``auto``. An unknown value raises, naming the accepted ones."""
    value = os.environ.get(PRECISION_ENV, "").strip().lower()
    if value:
        if value not in PRECISIONS:
            raise ValueError(f"{PRECISION_ENV}={value!r} is not a precision; set it to one of {', '.join(PRECISIONS)}")
        return value
    return "fp32" if fp32_forced() else "auto"


def cpu_flags(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags of ``cpuinfo`` (empty where the file is absent: not Linux)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags") and ":" in line:
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_name(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> str:
    """The CPU's model name (``/proc/cpuinfo``; the platform's processor string where that is absent): every
    timing and every precision choice is named with it, since our machines differ between sessions."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name") and ":" in line:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def cpu_has_native_bf16(flags: set[str] | None = None) -> bool:
    """True when the CPU computes bf16 matmuls natively (avx512_bf16 or AMX).

    Elsewhere bf16 autocast is emulated and slower than fp32, so ``auto`` stays in fp32 there.
    ``flags``: the CPU's feature flags (default: /proc/cpuinfo; where that is absent, torch's own checks).
    """
    flags = cpu_flags() if flags is None else flags
    if flags:
        return any(flag in flags for flag in _BF16_CPU_FLAGS)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # not Linux: ask torch (private API)
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def fp32_forced() -> bool:
    """True when ``LSMRL_FP32`` is set to 1 (or true/yes/on): the synonym of ``LSMRL_PRECISION=fp32``."""
    return os.environ.get(FORCE_FP32_ENV, "").strip().lower() in ("1", "true", "yes", "on")


#: ``auto`` picks bf16 only where a bf16 matmul measures at least this much faster than fp32.
MIN_BF16_SPEEDUP = 1.2
_measured_bf16_speedup: dict[str, float] = {}


def bf16_matmul_speedup(size: int = 1024, rounds: int = 3) -> float:
    """How much faster a ``size`` square bf16 matmul runs than an fp32 one on this CPU (best of ``rounds``
    interleaved timings each, so that a load spike hits both). Measured once per process (about 0.2 s), then
    cached.

    The flags alone do not decide it: on a 2-core VM with avx512_bf16 but no AMX, oneDNN's bf16 matmul
    measured 0.4-0.8x of MKL's fp32 (2026-12-01), so bf16 there would halve the speed for nothing.
    """
    key = f"cpu{size}x{torch.get_num_threads()}"
    if key not in _measured_bf16_speedup:
        import time

        generator = torch.Generator().manual_seed(0)
        a = torch.randn(size, size, generator=generator)
        b = torch.randn(size, size, generator=generator)
        pairs = {torch.float32: (a, b), torch.bfloat16: (a.bfloat16(), b.bfloat16())}
        best = {dtype: float("inf") for dtype in pairs}
        with torch.inference_mode():
            for dtype, (x, y) in pairs.items():
                torch.mm(x, y)  # warm-up (oneDNN creates its kernel on the first call)
            for _ in range(rounds):
                for dtype, (x, y) in pairs.items():
                    start = time.perf_counter()
                    torch.mm(x, y)
                    best[dtype] = min(best[dtype], time.perf_counter() - start)
        _measured_bf16_speedup[key] = best[torch.float32] / best[torch.bfloat16]
    return _measured_bf16_speedup[key]


def inference_precision(requested: str = "auto", device: torch.device | str | None = None,
                        flags: set[str] | None = None, speedup: float | None = None) -> str:
    """The precision inference runs in, "bf16" or "fp32".

    ``requested`` "bf16" or "fp32" is kept. ``auto`` first takes the process's setting
    (:func:`precision_setting`: ``LSMRL_PRECISION``, or ``LSMRL_FP32=1``); where that is ``auto`` too, it picks bf16
    on a CUDA device that supports it, and on a CPU that computes bf16 natively (:func:`cpu_has_native_bf16`,
    or ``flags``) where it also pays: a bf16 matmul at least :data:`MIN_BF16_SPEEDUP` times faster than fp32
    (:func:`bf16_matmul_speedup`, or ``speedup`` when given); fp32 otherwise. bf16 on a CPU without native
    bf16 is emulated: correct, slower.
    """
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r}; expected one of {PRECISIONS}")
    if requested != "auto":
        return requested
    requested = precision_setting()
    if requested != "auto":
        return requested
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    if device.type != "cpu" or not cpu_has_native_bf16(flags):
        return "fp32"
    speedup = bf16_matmul_speedup() if speedup is None else speedup
    return "bf16" if speedup >= MIN_BF16_SPEEDUP else "fp32"


def autocast_context(device: torch.device | str | None = None, precision: str = "auto", fp32_modules=()):
    """A context manager that runs the model's forward in ``precision`` on ``device``.

    bf16 is :func:`torch.autocast`: matmuls and convolutions in bf16 with fp32
    accumulation, norms, softmax and reductions kept in fp32 by autocast's own
    op lists; parameters stay fp32. fp32 switches autocast off (also an outer one). The outputs of a
    bf16 forward can be bf16 tensors: callers that keep them call ``.float()``.
    ``fp32_modules`` run in fp32 even inside the bf16 region (:func:`keep_fp32_under_autocast`).
    """
    import contextlib

    for module in fp32_modules:
        keep_fp32_under_autocast(module)
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type not in ("cpu", "cuda"):
        return contextlib.nullcontext()
    if inference_precision(precision, device) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    # fp32 even inside an outer autocast region (e.g. Grad-CAM called from bf16 code)
    return torch.autocast(device.type, enabled=False)


_FP32_MARK = "_lsmrl_fp32_under_autocast"


def keep_fp32_under_autocast(module: torch.nn.Module) -> torch.nn.Module:
    """Make ``module`` run in fp32 whenever it is called inside an autocast region (idempotent).

    For small, precision-sensitive parts whose cost does not matter (a model's
    head after the ViT) and for code written for one dtype. Implemented with a
    forward pre-hook that, only in a thread where autocast is on, casts the
    floating inputs to fp32 and switches autocast off, and a forward hook
    (``always_call``: also on an exception) that switches it back. The hooks are
    permanent: adding and removing them per call would race with other threads
    using the same model; outside autocast they do nothing.
    """
    if getattr(module, _FP32_MARK, False):
        return module
    import threading

    stack = threading.local()

    def to_fp32(value):
        if torch.is_tensor(value) and value.is_floating_point() and value.dtype != torch.float32:
            return value.float()
        return value

    def enter(mod, args, kwargs):
        device_type = next((a.device.type for a in (*args, *kwargs.values()) if torch.is_tensor(a)), "cpu")
        pending = getattr(stack, "contexts", None)
        if pending is None:
            pending = stack.contexts = []
        if not torch.is_autocast_enabled(device_type):
            pending.append(None)
            return None
        context = torch.autocast(device_type, enabled=False)
        context.__enter__()
        pending.append(context)
        return tuple(to_fp32(a) for a in args), {k: to_fp32(v) for k, v in kwargs.items()}

    def leave(mod, args, kwargs, output):
        pending = getattr(stack, "contexts", None)
        context = pending.pop() if pending else None
        if context is not None:
            context.__exit__(None, None, None)
        return None

    module.register_forward_pre_hook(enter, with_kwargs=True)
    module.register_forward_hook(leave, with_kwargs=True, always_call=True)
    setattr(module, _FP32_MARK, True)
    return module
