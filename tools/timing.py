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


def process_cpu_seconds(children: bool = False) -> float:
    """CPU seconds (user + system) of this process so far, every thread included (torch's workers too);
    ``children``: plus those of its finished child processes (the video decoder runs in one)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    seconds = usage.ru_utime + usage.ru_stime
    if children:
        spawned = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds += spawned.ru_utime + spawned.ru_stime
    return seconds


def time_calls(call: Callable[[], object], repeats: int, warmup: int = 1, children: bool = False) -> dict:
    """Wall and CPU seconds of ``repeats`` sequential ``call()``s after ``warmup`` untimed ones:
    ``{"wall_s": [...], "cpu_s": [...]}`` (``children``: the CPU of child processes a call waits for counts)."""
    for _ in range(warmup):
        call()
    wall, cpu = [], []
    for _ in range(repeats):
        cpu_start, start = process_cpu_seconds(children), time.perf_counter()
        call()
        wall.append(time.perf_counter() - start)
        cpu.append(process_cpu_seconds(children) - cpu_start)
    return {"wall_s": wall, "cpu_s": cpu}
