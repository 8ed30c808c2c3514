"""Optional ZeroGPU support: ``@gpu`` is ``spaces.GPU`` on a Hugging Face ZeroGPU Space, a no-op elsewhere.

On a ZeroGPU Space a GPU is attached only while a function decorated with
``spaces.GPU`` runs. The ``spaces`` package exists only there (and is not in
requirements.txt): our target is a CPU Space (``suggested_hardware: cpu-basic``),
and ZeroGPU's published stack (Python 3.10, older PyTorch) does not match the
pins (anchors.md §5). So this decorator is guarded:

- ``spaces`` importable (and ``LSMRL_DISABLE_SPACES_GPU`` unset): ``@gpu`` and
  ``@gpu(duration=120)`` become ``spaces.GPU`` and ``spaces.GPU(duration=120)``;
- otherwise (the usual case here, CI, a CPU Space, Docker): the function is
  returned unchanged, with no wrapper, no import cost and no warning.

Decorate only the handlers that run the model on the device (feature
extraction of an upload, Grad-CAM), never the whole app. ``spaces`` must be
imported before CUDA is initialised, so import this module early in
``app/main.py`` (after it puts the repo root on ``sys.path``, before ``lsmrl``'s model
modules)::

    from app.gpu import gpu

    @gpu(duration=60)
    def retrieve_video(video, modality, top_k): ...
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any, TypeVar, overload

F = TypeVar("F", bound=Callable[..., Any])

DISABLE_ENV = "LSMRL_DISABLE_SPACES_GPU"


def spaces_module() -> Any | None:
    """The ``spaces`` module, or None when it is absent, broken or disabled by ``LSMRL_DISABLE_SPACES_GPU``."""
    if os.environ.get(DISABLE_ENV, "").strip().lower() in ("1", "true", "yes"):
        return None
    try:
        module = importlib.import_module("spaces")
    except Exception:  # noqa: BLE001 - ImportError, or a broken install: run without ZeroGPU
        return None
    return module if callable(getattr(module, "GPU", None)) else None


def gpu_available() -> bool:
    """Whether ``@gpu`` delegates to ``spaces.GPU``."""
    return spaces_module() is not None


@overload
def gpu(fn: F) -> F: ...


@overload
def gpu(fn: None = None, *, duration: float | None = None, **kwargs: Any) -> Callable[[F], F]: ...


def gpu(fn=None, *, duration=None, **kwargs):
    """``spaces.GPU`` if available, else identity. Use as ``@gpu`` or ``@gpu(duration=60)``."""

    def decorate(function: F) -> F:
        spaces = spaces_module()
        if spaces is None:
            return function
        options = dict(kwargs)
        if duration is not None:
            options["duration"] = duration
        return spaces.GPU(**options)(function) if options else spaces.GPU(function)

    if fn is not None:
        if not callable(fn):
            raise TypeError(f"@gpu decorates a function, got {type(fn).__name__}")
        return decorate(fn)
    return decorate


__all__ = ["DISABLE_ENV", "gpu", "gpu_available", "spaces_module"]
