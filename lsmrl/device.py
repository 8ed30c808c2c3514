"""The one device helper and the one seeding helper.

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
