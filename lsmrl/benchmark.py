"""``python -m lsmrl bench model``: parameters, FLOPs and CPU time of frame-wise CLIP, STFL and joint attention.

FLOPs: ``torch.utils.flop_counter`` counts the linear layers and the patch
embedding, but on the CPU it counts fused attention as zero (design.md §5), and
attention is exactly what STFL changes. So the counter's attention entries are
dropped and every attention call is counted explicitly from its input shape by
a forward hook: ``4 * L^2 * width`` per sequence of L tokens (QK^T and AV,
2 FLOPs per multiply-add). :func:`expected_block_flops` gives the closed form
(``2 * params * tokens + 4 * L^2 * width`` per block) that the tests check
the count against.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from lsmrl.model.backbone import BackboneConfig, build_clip
from lsmrl.model.stfl import STFL, STFLConfig

VARIANTS = ("frame-wise", "stfl", "joint")


def variant_config(variant: str, num_frames: int, layers: int) -> STFLConfig:
    if variant == "frame-wise":
        return STFLConfig(grouped=False, shift=False)
    if variant == "stfl":
        return STFLConfig()
    if variant == "joint":  # every block attends over all T x N tokens of the tracklet
        return STFLConfig(grouped=True, shift=False, grouped_start=0, shift_start=layers, group_size=num_frames)
    raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")


def count_flops(stfl: STFL, frames: torch.Tensor) -> dict[str, int]:
    """{"linear": counted dense FLOPs, "attention": explicit attention FLOPs, "total": both}."""
    attention = {"flops": 0}

    def hook(module, args, kwargs):
        query = args[0] if args else kwargs["query"]
        batch, length, width = query.shape  # open_clip's attention is batch-first
        attention["flops"] += 4 * batch * length * length * width

    handles = [block.attn.register_forward_pre_hook(hook, with_kwargs=True)
               for block in stfl.visual.transformer.resblocks]
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            stfl(frames)
    finally:
        for handle in handles:
            handle.remove()
    dense = sum(count for op, count in counter.get_flop_counts()["Global"].items()
                if "attention" not in str(op))
    return {"linear": int(dense), "attention": int(attention["flops"]), "total": int(dense + attention["flops"])}


def expected_block_flops(width: int, tokens_per_sequence: int, sequences: int, mlp_ratio: float = 4.0) -> int:
    """Closed form for one ViT block: 2 x (4 W^2 + 2 ratio W^2) per token + 4 L^2 W per sequence."""
    params = 4 * width * width + 2 * int(mlp_ratio * width) * width
    tokens = tokens_per_sequence * sequences
    return 2 * params * tokens + 4 * tokens_per_sequence**2 * width * sequences


def time_forward(stfl: STFL, frames: torch.Tensor, repeats: int = 3) -> float:
    with torch.no_grad():
        stfl(frames)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            stfl(frames)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


@dataclass
class Row:
    frames: int
    variant: str
    params_m: float
    gflops: float
    attention_gflops: float
    ratio_to_framewise: float
    seconds: float


def bench_model(model_name: str = "ViT-B-16", image_size=(256, 128), frame_counts=(4, 8, 12),
                repeats: int = 3, timing: bool = True) -> list[Row]:
    torch.manual_seed(0)
    clip = build_clip(BackboneConfig(model_name, tuple(image_size))).eval()
    layers = len(clip.visual.transformer.resblocks)
    params = sum(p.numel() for p in clip.visual.parameters()) / 1e6
    rows = []
    for num_frames in frame_counts:
        frames = torch.randn(1, num_frames, 3, *image_size)
        base = None
        for variant in VARIANTS:
            stfl = STFL(clip.visual, variant_config(variant, num_frames, layers))
            flops = count_flops(stfl, frames)
            base = base or flops["total"]
            seconds = time_forward(stfl, frames, repeats) if timing else float("nan")
            rows.append(Row(num_frames, variant, round(params, 2), round(flops["total"] / 1e9, 2),
                            round(flops["attention"] / 1e9, 2), round(flops["total"] / base, 4), round(seconds, 3)))
    return rows


def format_rows(rows: list[Row], model_name: str, image_size) -> str:
    lines = [f"{model_name} at {image_size[0]}x{image_size[1]}, one tracklet, {torch.get_num_threads()} threads, "
             f"{platform.processor() or platform.machine()}",
             "| T | variant | params (M) | GFLOPs | of which attention | vs frame-wise | CPU s |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row.frames} | {row.variant} | {row.params_m} | {row.gflops} | {row.attention_gflops} | "
                     f"{row.ratio_to_framewise:.3f}x | {row.seconds} |")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["model"], help="model: STFL vs frame-wise vs joint attention")
    parser.add_argument("--clip-model", default="ViT-B-16")
    parser.add_argument("--image-size", type=int, nargs=2, default=(256, 128), metavar=("H", "W"))
    parser.add_argument("--frames", type=int, nargs="+", default=[4, 8, 12])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the rows as JSON")


def run(args: argparse.Namespace) -> int:
    rows = bench_model(args.clip_model, tuple(args.image_size), tuple(args.frames), args.repeats)
    print(format_rows(rows, args.clip_model, tuple(args.image_size)))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump([row.__dict__ for row in rows], handle, indent=2)
    return 0
