"""The one copy of the timing helpers that the benchmarks share (``tools.bench``, ``tools/app_perf.py``,
``tools/loadtest.py``, ``tools/app_bench.py``): light, numpy only, so a load generator or an app launcher can import it
without torch."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q``-th percentile (linear interpolation, numpy's default) of ``values``; None when there are none."""
    import numpy as np

    array = np.asarray(list(values), dtype=np.float64)
    if array.size == 0:
        return None
    return float(np.percentile(array, q))


def latency_summary(times: Iterable[float]) -> dict:
    """``{"n", "p50", "p95", "max"}`` of ``times`` (seconds); the numbers are None when there are none."""
    values = list(times)
    return {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95),
            "max": max(values) if values else None}


def process_cpu_seconds() -> float:
    """CPU seconds (user + system) of this process so far, every thread included (torch's workers too)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def time_calls(call: Callable[[], object], repeats: int, warmup: int = 1) -> dict:
    """Wall and process-CPU seconds of ``repeats`` sequential ``call()``s after ``warmup`` untimed ones:
    ``{"wall_s": [...], "cpu_s": [...]}``."""
    for _ in range(warmup):
        call()
    wall, cpu = [], []
    for _ in range(repeats):
        cpu_start, start = process_cpu_seconds(), time.perf_counter()
        call()
        wall.append(time.perf_counter() - start)
        cpu.append(process_cpu_seconds() - cpu_start)
    return {"wall_s": wall, "cpu_s": cpu}
