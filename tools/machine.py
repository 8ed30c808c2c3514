"""The machine a figure was measured on: what every benchmark, load test and soak states next to its figures."""

from __future__ import annotations

import os
import platform

import torch

from lsmrl.device import cpu_flags, cpu_name

#: The CPU flags that decide how fast bf16 runs here (named next to every figure).
PRECISION_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


def machine_info() -> dict:
    """CPU model and its precision-relevant flags, cores, torch threads, load average (a loaded machine gives
    lower, noisier figures): what every benchmark and load-test figure is stated next to."""
    info = {"cpu": cpu_name(), "cpu_flags": sorted(set(PRECISION_FLAGS) & cpu_flags()), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__.split("+")[0],
            "python": platform.python_version(), "platform": platform.platform(terse=True)}
    if hasattr(os, "getloadavg"):
        info["load_1min_start"] = round(os.getloadavg()[0], 2)
    return info
