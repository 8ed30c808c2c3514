"""lsmrl.allocator: glibc keeps freed memory for reuse (fewer page faults per forward); opt-out by env."""

from __future__ import annotations

import subprocess
import sys

CHILD = r"""
import json, resource, sys
import numpy as np
from lsmrl.allocator import tune_cpu_allocator
tuned = tune_cpu_allocator()
assert tune_cpu_allocator() is tuned  # idempotent
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
a = np.ones(64 * 2**20 // 8); del a  # 64 MiB: above the largest mmap threshold glibc adapts to (32 MiB)
start = faults()
for _ in range(5):
    a = np.ones(64 * 2**20 // 8); del a
print(json.dumps({"tuned": tuned, "faults": faults() - start}))
"""


def run_child(env_value: str | None) -> dict:
    import json
    import os

    env = {k: v for k, v in os.environ.items() if k != "LSMRL_MALLOC_TUNING"}
    if env_value is not None:
        env["LSMRL_MALLOC_TUNING"] = env_value
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_freed_memory_is_reused_instead_of_faulted_in_again():
    import platform

    tuned, default = run_child(None), run_child("0")
    assert default["tuned"] is False
    if not (sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"):
        assert tuned["tuned"] is False
        return
    assert tuned["tuned"] is True
    # by default every 64 MiB block is faulted in again (80k faults for 4 KiB pages, fewer with transparent huge
    # pages); reused memory faults (almost) never
    assert default["faults"] > 100 and tuned["faults"] * 10 < default["faults"], (default, tuned)
