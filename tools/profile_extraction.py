"""Where feature extraction spends its CPU time: torch.profiler operator tables of the ViT-B/16 and miniature forwards.

    python tools/profile_extraction.py --json checkpoints/evidence/extraction_profile.json
    python tools/profile_extraction.py --models mini --precisions bf16 --top 20

Each (model, precision) pair runs the retrieval forward exactly as extraction does
(eval mode, ``torch.inference_mode``, :func:`lsmrl.engine.extract.inference_autocast` forced to the precision)
on random (B, T, 3, H, W) batches: one warm-up forward, then ``--repeats`` profiled forwards. The table lists the
operators with the most *self* CPU time (time in the operator itself, not in the operators it calls) and
their share of the profiled total, so a reader sees whether the matmuls dominate (as they should) or casts,
layer norms, softmax and copies do. The models are the benchmark's (:func:`tools.bench_speed.build_vitb16_model`,
random init; :func:`tools.bench_speed.load_mini_model`, the committed miniature checkpoint).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from lsmrl.engine.extract import inference_autocast  # noqa: E402
from tools.bench_speed import build_vitb16_model, load_mini_model  # noqa: E402
from tools.command import write_result  # noqa: E402
from tools.machine import machine_info  # noqa: E402

MODELS = ("vitb16", "mini")
PRECISIONS = ("fp32", "bf16")


@dataclass
class ProfileConfig:
    """What to profile: which models and precisions, the batch per model, frames per tracklet, repeats."""

    models: tuple[str, ...] = MODELS
    precisions: tuple[str, ...] = PRECISIONS
    vitb16_batch: int = 4
    mini_batch: int = 16
    frames: int = 6
    image_size: tuple[int, int] = (256, 128)
    repeats: int = 2
    top: int = 15


@dataclass
class OperatorRow:
    """One operator's self CPU time over the profiled forwards, its share of the total, and its call count."""

    name: str
    self_cpu_ms: float
    share: float
    calls: int


def build_model(name: str, config: ProfileConfig):
    """The benchmark's model ``name`` ("vitb16" or "mini") in eval mode, and its batch size."""
    if name == "vitb16":
        return build_vitb16_model(config.image_size), config.vitb16_batch
    if name == "mini":
        return load_mini_model()[0].eval(), config.mini_batch
    raise ValueError(f"unknown model {name!r}; expected one of {MODELS}")


def operator_table(model, batch: int, config: ProfileConfig, precision: str) -> dict:
    """Profile ``config.repeats`` forwards of ``model`` in ``precision``; the top operators by self CPU time."""
    height, width = model.config.image_size
    frames = torch.randn(batch, config.frames, 3, height, width, generator=torch.Generator().manual_seed(0))
    modalities = ["visible", "infrared"] * (batch // 2) + ["visible"] * (batch % 2)
    with torch.inference_mode(), inference_autocast(model, "cpu", precision):
        model(frames, modalities)  # warm-up (allocator, oneDNN primitive caches)
        start = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(config.repeats):
                model(frames, modalities)
        wall = (time.perf_counter() - start) / config.repeats
    events = [event for event in prof.key_averages() if event.self_cpu_time_total > 0]
    total = sum(event.self_cpu_time_total for event in events)
    events.sort(key=lambda event: event.self_cpu_time_total, reverse=True)
    rows = [OperatorRow(event.key, round(event.self_cpu_time_total / 1000 / config.repeats, 2),
                        round(event.self_cpu_time_total / total, 4), event.count // config.repeats)
            for event in events[:config.top]]
    return {"batch": batch, "frames": config.frames, "image_size": [height, width],
            "profiled_forward_ms": round(total / 1000 / config.repeats, 1),
            "wall_forward_ms_under_profiler": round(wall * 1000, 1),
            "top_operators": [asdict(row) for row in rows]}


def format_table(title: str, table: dict) -> str:
    lines = [f"{title}: batch {table['batch']}, T={table['frames']}, {table['profiled_forward_ms']} ms self CPU "
             "per forward", f"{'operator':<48} {'self ms':>9} {'share':>7} {'calls':>6}"]
    for row in table["top_operators"]:
        lines.append(f"{row['name'][:48]:<48} {row['self_cpu_ms']:>9.2f} {100 * row['share']:>6.1f}% "
                     f"{row['calls']:>6}")
    return "\n".join(lines)


def profile_extraction(config: ProfileConfig, log=print) -> dict:
    """Operator tables for every (model, precision) of ``config``, with the machine they were taken on."""
    result: dict = {"machine": machine_info(), "config": asdict(config), "profiles": {}}
    for name in config.models:
        model, batch = build_model(name, config)
        for precision in config.precisions:
            table = operator_table(model, batch, config, precision)
            result["profiles"][f"{name}_{precision}"] = table
            log(format_table(f"{name} {precision}", table))
        del model
    if hasattr(os, "getloadavg"):
        result["machine"]["load_1min_end"] = round(os.getloadavg()[0], 2)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--vitb16-batch", type=int, default=ProfileConfig.vitb16_batch)
    parser.add_argument("--mini-batch", type=int, default=ProfileConfig.mini_batch)
    parser.add_argument("--frames", type=int, default=ProfileConfig.frames)
    parser.add_argument("--repeats", type=int, default=ProfileConfig.repeats)
    parser.add_argument("--top", type=int, default=ProfileConfig.top)
    parser.add_argument("--json", default=None, help="write the tables (and the command) to this JSON file")
    args = parser.parse_args(argv)
    config = ProfileConfig(tuple(args.models), tuple(args.precisions), args.vitb16_batch, args.mini_batch,
                           args.frames, repeats=args.repeats, top=args.top)
    result = profile_extraction(config)
    write_result(result, args.json, "profile_extraction.py", argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
