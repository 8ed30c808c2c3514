"""Feature extraction speed against the matmul peak, measured in rounds on a shared machine.

    python tools/extraction_speed.py --rounds 5 --json speed.json

A shared CPU's load changes from second to second, so one measurement says little. Every round measures, in
this one process and interleaved, the fp32 and bf16 matmul peaks (:class:`tools.bench_speed.PeakTracker`, probed
between the timed forwards) and the benchmark's own extraction figures (:func:`tools.bench_speed.extraction_throughput`
on :func:`tools.bench_speed.load_mini_model` and :func:`tools.bench_speed.build_vitb16_model`, the batch sizes of
``bench all``). Per round it derives the two figures the benchmark's goals are about: ViT-B/16 bf16 extraction
as a share of that round's bf16 peak, and the miniature model's bf16 / fp32 extraction speed; the JSON holds
every round and the median, minimum and maximum of each figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from lsmrl.device import cpu_flags  # noqa: E402
from tools.bench_speed import PeakTracker, build_vitb16_model, extraction_throughput, load_mini_model  # noqa: E402
from tools.command import write_result  # noqa: E402
from tools.machine import machine_info  # noqa: E402


@dataclass
class SpeedConfig:
    """Rounds, repeats per timed batch, frames per tracklet, the batch sizes tried per model (``bench all``'s), and
    whether ViT-B/16 runs at all (``vitb16``) and in fp32 too (``vitb16_fp32``)."""

    rounds: int = 5
    repeats: int = 3
    frames: int = 6
    mini_batches: tuple[int, ...] = (1, 4, 16)
    vitb16_batches: tuple[int, ...] = (1, 4)
    vitb16_fp32: bool = True
    vitb16: bool = True


def spread(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "values": [round(v, 3) for v in values]}


def measure(config: SpeedConfig, log=print) -> dict:
    """Every round's figures and their spread (see the module docstring)."""
    mini, described = load_mini_model()
    vitb = build_vitb16_model() if config.vitb16 else None
    rounds = []
    for index in range(config.rounds):
        peaks = {precision: PeakTracker(2048, precision=precision) for precision in ("fp32", "bf16")}
        for tracker in peaks.values():
            tracker.probe()
        runs = {}
        for precision in ("fp32", "bf16"):
            runs[f"mini_{precision}"] = extraction_throughput(mini, config.frames, config.mini_batches,
                                                              config.repeats, peaks[precision], precision)
        for precision in (("fp32", "bf16") if config.vitb16_fp32 else ("bf16",)) if vitb is not None else ():
            runs[f"vitb16_{precision}"] = extraction_throughput(vitb, config.frames, config.vitb16_batches,
                                                                config.repeats, peaks[precision], precision)
        for run in runs.values():  # against the best peak of the round, as bench all does over its run
            run["share_of_peak"] = round(run["gflops_per_s"] / peaks[run["precision"]].gflops, 3)
        row = {"matmul_fp32_gflops": round(peaks["fp32"].gflops, 1),
               "matmul_bf16_gflops": round(peaks["bf16"].gflops, 1),
               "mini_bf16_speedup": round(runs["mini_bf16"]["tracklets_per_s"]
                                          / runs["mini_fp32"]["tracklets_per_s"], 3),
               "load_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
               "runs": runs}
        if "vitb16_bf16" in runs:
            row["vitb16_bf16_share_of_peak"] = runs["vitb16_bf16"]["share_of_peak"]
        if "vitb16_fp32" in runs:
            row["vitb16_fp32_share_of_peak"] = runs["vitb16_fp32"]["share_of_peak"]
            row["vitb16_bf16_speedup"] = round(runs["vitb16_bf16"]["tracklets_per_s"]
                                               / runs["vitb16_fp32"]["tracklets_per_s"], 3)
        rounds.append(row)
        vitb_text = (f"ViT-B/16 bf16 {runs['vitb16_bf16']['gflops_per_s']} GFLOP/s = "
                     f"{row['vitb16_bf16_share_of_peak']:.1%} of {row['matmul_bf16_gflops']}; " if vitb else "")
        log(f"round {index + 1}: {vitb_text}mini bf16/fp32 "
            f"{row['mini_bf16_speedup']}x ({runs['mini_bf16']['tracklets_per_s']} / "
            f"{runs['mini_fp32']['tracklets_per_s']} tracklets/s); load {row['load_1min']}")
    keys = [key for key in rounds[0] if key not in ("runs", "load_1min")]
    flags = cpu_flags()
    return {"machine": {**machine_info(), "bf16_flags": sorted(f for f in flags if "bf16" in f or "amx" in f)},
            "config": asdict(config), "mini_model": described,
            "summary": {key: spread([row[key] for row in rounds]) for key in keys}, "rounds": rounds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=SpeedConfig.rounds)
    parser.add_argument("--repeats", type=int, default=SpeedConfig.repeats)
    parser.add_argument("--frames", type=int, default=SpeedConfig.frames)
    parser.add_argument("--no-vitb16-fp32", action="store_true", help="skip ViT-B/16 in fp32 (the slowest part)")
    parser.add_argument("--no-vitb16", action="store_true", help="the miniature model only")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    config = SpeedConfig(args.rounds, args.repeats, args.frames, vitb16_fp32=not args.no_vitb16_fp32,
                         vitb16=not args.no_vitb16)
    result = measure(config)
    print(json.dumps(result["summary"], indent=1))
    write_result(result, args.json, "extraction_speed.py", argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
