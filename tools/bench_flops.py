"""FLOPs and CPU time of frame-wise CLIP, STFL and joint attention (``python tools/bench.py model``).

FLOPs: ``torch.utils.flop_counter`` counts the linear layers and the patch
embedding, but it misses ``nn.MultiheadAttention``'s fused fast path entirely
(projections included) and counts CPU ``scaled_dot_product_attention`` as zero;
attention is exactly what STFL changes. So the counters switch the fast path
off while counting, drop the counter's attention entries and count every
attention call explicitly from its input shape by a forward hook:
``4 * L^2 * width`` per sequence of L tokens (QK^T and AV, 2 FLOPs per
multiply-add). :func:`expected_tower_flops` gives the closed form (patch
embedding, ``2 * params * tokens + 4 * L^2 * width`` per block, projection)
that the tests check the count against on ViT-B/16's real 12-head shape.
"""

from __future__ import annotations

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


def attention_and_dense_flops(run, resblocks) -> dict[str, int]:
    """FLOPs of ``run()``: the counter's dense ops, plus every attention call of ``resblocks`` counted explicitly.

    ``nn.MultiheadAttention`` in eval/no_grad mode takes a fused fast path that
    ``FlopCounterMode`` does not see at all: not the attention, and not the QKV
    and output projections either (ViT-B/16, 2 frames: 30.7 GFLOPs counted
    against 45.1 from the closed form). So the fast path is switched off while
    counting (and restored after): the projections then run as counted
    ``addmm``/``mm`` ops. The attention products themselves still go through
    ``scaled_dot_product_attention``, which counts as zero on the CPU; they are
    counted by a forward pre-hook from the query's shape instead, ``4 * L^2 * width``
    per sequence of L tokens (QK^T and AV, 2 FLOPs per multiply-add), and the
    counter's own attention entries are dropped so nothing counts twice.
    """
    attention = {"flops": 0}

    def hook(module, args, kwargs):
        query = args[0] if args else kwargs["query"]
        batch, length, width = query.shape  # open_clip's attention is batch-first
        attention["flops"] += 4 * batch * length * length * width

    handles = [block.attn.register_forward_pre_hook(hook, with_kwargs=True) for block in resblocks]
    counter = FlopCounterMode(display=False)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), counter:
            run()
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        for handle in handles:
            handle.remove()
    dense = sum(count for op, count in counter.get_flop_counts()["Global"].items()
                if "attention" not in str(op))
    return {"linear": int(dense), "attention": int(attention["flops"]), "total": int(dense + attention["flops"])}


def count_flops(stfl: STFL, frames: torch.Tensor) -> dict[str, int]:
    """{"linear": counted dense FLOPs, "attention": explicit attention FLOPs, "total": both} of the visual tower."""
    return attention_and_dense_flops(lambda: stfl(frames), stfl.visual.transformer.resblocks)


def count_flops_from_shapes(stfl: STFL, frames_shape: tuple[int, ...]) -> dict[str, int]:
    """:func:`count_flops` on fake ``frames_shape`` tensors (``FakeTensorMode``): every op is dispatched and
    counted with its real shapes, none is computed, so a count costs seconds whatever the machine's load
    (a counted ViT-B/16 forward at T=24 with joint attention is 0.9 TFLOPs)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode(allow_non_fake_inputs=True):  # the weights stay real; what they meet is fake
        return count_flops(stfl, torch.empty(frames_shape))


def expected_block_flops(width: int, tokens_per_sequence: int, sequences: int, mlp_ratio: float = 4.0) -> int:
    """Closed form for one ViT block: 2 x (4 W^2 + 2 ratio W^2) per token + 4 L^2 W per sequence."""
    params = 4 * width * width + 2 * int(mlp_ratio * width) * width
    tokens = tokens_per_sequence * sequences
    return 2 * params * tokens + 4 * tokens_per_sequence**2 * width * sequences


def expected_tower_flops(visual, num_frames: int, mlp_ratio: float = 4.0) -> int:
    """Closed form of a frame-wise ViT tower on ``num_frames`` frames: patch embedding, every block
    (:func:`expected_block_flops`) and the output projection."""
    width = visual.transformer.width
    patches = visual.grid_size[0] * visual.grid_size[1]
    patch = visual.conv1.kernel_size
    embed = 2 * 3 * patch[0] * patch[1] * width * patches
    proj = 2 * width * visual.proj.shape[1] if visual.proj is not None else 0
    blocks = len(visual.transformer.resblocks) * expected_block_flops(width, 1 + patches, num_frames, mlp_ratio)
    return blocks + num_frames * (embed + proj)


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
            flops = count_flops_from_shapes(stfl, tuple(frames.shape))
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


#: Tracklet lengths of the cost table: the test protocols' 4-12 and HITSZ-VCM's 24-frame runs, where joint
#: attention's quadratic cost shows and STFL's design matters.
COST_FRAMES = (4, 8, 12, 24)
#: STFL's FLOPs may exceed frame-wise CLIP's by at most this factor at every T (it only shifts and groups).
STFL_FLOPS_GOAL = 1.03


def flops_table(image_size=(256, 128), frame_counts=COST_FRAMES, model_name: str = "ViT-B-16") -> dict:
    """``flops_t{T}_gflops`` ({variant: GFLOPs}), ``stfl_flops_ratio_t{T}`` and ``joint_flops_ratio_t{T}`` for
    every T of ``frame_counts`` (one tracklet, counted, not timed), plus ``stfl_flops_goal_met``."""
    rows = bench_model(model_name, tuple(image_size), tuple(frame_counts), timing=False)
    out: dict = {"flops_frames": list(frame_counts), "flops_params_m": rows[0].params_m}
    for frames in frame_counts:
        by_variant = {row.variant: row for row in rows if row.frames == frames}
        out[f"flops_t{frames}_gflops"] = {row.variant: row.gflops for row in by_variant.values()}
        out[f"stfl_flops_ratio_t{frames}"] = round(by_variant["stfl"].ratio_to_framewise, 4)
        out[f"joint_flops_ratio_t{frames}"] = round(by_variant["joint"].ratio_to_framewise, 4)
    out["stfl_flops_goal_met"] = all(out[f"stfl_flops_ratio_t{t}"] <= STFL_FLOPS_GOAL for t in frame_counts)
    return out


