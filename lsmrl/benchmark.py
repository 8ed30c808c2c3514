"""Benchmarks: ``python -m lsmrl bench {model,all,report}``.

``bench model``: parameters, FLOPs and CPU time of frame-wise CLIP, STFL and joint attention.
``bench all --json OUT``: every figure of README's Performance section in one run
(fp32 and bf16 matmul peaks, feature extraction of the miniature model and of ViT-B/16
in both precisions, each as a share of its own precision's peak, FLOPs and their
ratios at T=4/8/12/24, retrieval latency over 1k/10k/100k
galleries, UMAP cold and cached, and, through ``python app/perf.py`` in a subprocess,
app start and an uploaded-video query end to end).
``bench report --json OUT --readme README.md``: rewrites the block between
``<!-- performance:start -->`` and ``<!-- performance:end -->`` from that JSON.

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

import argparse
import json
import os
import platform
import shlex
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from lsmrl.device import cpu_name
from lsmrl.model.backbone import BackboneConfig, build_clip
from lsmrl.model.stfl import STFL, STFLConfig
from lsmrl.timing import percentile

VARIANTS = ("frame-wise", "stfl", "joint")


def variant_config(variant: str, num_frames: int, layers: int) -> STFLConfig:
    if variant == "frame-wise":
        return STFLConfig(grouped=False, shift=False)
    if variant == "stfl":
        return STFLConfig()
    if variant == "joint":  # every block attends over all T x N tokens of the tracklet
        return STFLConfig(grouped=True, shift=False, grouped_start=0, shift_start=layers, group_size=num_frames)
    raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")


def _attention_and_dense_flops(run, resblocks) -> dict[str, int]:
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
    return _attention_and_dense_flops(lambda: stfl(frames), stfl.visual.transformer.resblocks)


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


# =========================================================================== bench all
# One run measures everything the README's Performance section reports (issue 7).
# Each measurement is a function returning a dict of JSON keys; a measurement that
# cannot run here (no app yet, no checkpoint) returns None values and a note.

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CHECKPOINT = REPO / "checkpoints" / "lsmrl-mini-synthvvi.safetensors"
DEFAULT_DATA = REPO / "assets" / "synthvvi"


def machine_info() -> dict:
    """CPU model, cores, torch threads, load average (a loaded machine gives lower, noisier figures)."""
    info = {"cpu": cpu_name(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__.split("+")[0], "python": platform.python_version(),
            "platform": platform.platform(terse=True)}
    if hasattr(os, "getloadavg"):
        info["load_1min_start"] = round(os.getloadavg()[0], 2)
    return info


# --------------------------------------------------------------------------- matmul peak
PRECISION_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def _peak_key(precision: str) -> str:
    return "matmul_gflops" if precision == "fp32" else f"matmul_{precision}_gflops"


def matmul_peak(sizes=(1024, 2048, 3072), repeats: int = 5, precision: str = "fp32") -> dict:
    """The machine's practical peak in ``precision`` ("fp32" or "bf16"): the best GFLOP/s of large square
    matmuls (2 n^3 FLOPs each). Keys ``matmul_gflops`` (fp32) or ``matmul_bf16_gflops``, and ``..._by_size``."""
    dtype = PRECISION_DTYPES[precision]
    best, per_size = 0.0, {}
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for n in sizes:
            a = torch.randn(n, n, generator=generator).to(dtype)
            b = torch.randn(n, n, generator=generator).to(dtype)
            out = torch.empty(n, n, dtype=dtype)
            torch.mm(a, b, out=out)  # warm-up
            rates = []
            for _ in range(repeats):
                start = time.perf_counter()
                torch.mm(a, b, out=out)
                rates.append(2 * n**3 / (time.perf_counter() - start) / 1e9)
            per_size[str(n)] = round(max(rates), 1)
            best = max(best, max(rates))
    key = _peak_key(precision)
    return {key: round(best, 1), f"{key}_by_size": per_size}


class PeakTracker:
    """The best matmul rate in ``precision`` seen during a run: :meth:`probe` times one square matmul.

    On a shared machine the load changes from second to second; probing between
    the model's timed repeats and keeping the best of each makes "share of peak"
    compare the two under the same conditions (best against best).
    """

    def __init__(self, n: int = 2048, gflops: float = 0.0, precision: str = "fp32"):
        generator = torch.Generator().manual_seed(1)
        dtype = PRECISION_DTYPES[precision]
        self.n = n
        self.precision = precision
        self._a = torch.randn(n, n, generator=generator).to(dtype)
        self._b = torch.randn(n, n, generator=generator).to(dtype)
        self._out = torch.empty(n, n, dtype=dtype)
        self.gflops = gflops
        self.probes = 0

    def probe(self) -> float:
        with torch.inference_mode():
            start = time.perf_counter()
            torch.mm(self._a, self._b, out=self._out)
            rate = 2 * self.n**3 / (time.perf_counter() - start) / 1e9
        self.gflops = max(self.gflops, rate)
        self.probes += 1
        return rate


# --------------------------------------------------------------------------- feature extraction
def count_model_flops(model, frames: torch.Tensor, modalities) -> int:
    """FLOPs of one LSMRL forward: the counter's dense ops plus the visual tower's attention counted explicitly
    (:func:`_attention_and_dense_flops`, fast path off).

    (SD and CMI attend over the prompt bank / memory of a few hundred entries per
    tracklet: their dense projections are counted, their attention products are
    not, which is negligible next to the ViT.)
    """
    counted = _attention_and_dense_flops(lambda: model(frames, modalities), model.stfl.visual.transformer.resblocks)
    return counted["total"]


def load_mini_model(checkpoint: str | Path | None = DEFAULT_CHECKPOINT):
    """(model, description): the committed miniature LSMRL if present, else a random-init one (same shapes)."""
    from lsmrl.model.lsmrl import LSMRL, LSMRLConfig

    if checkpoint is not None and Path(checkpoint).is_file():
        from lsmrl.model.checkpoint import load_model

        model, _ = load_model(checkpoint)
        return model, f"checkpoint {Path(checkpoint).name}"
    from lsmrl.model.tokenizer import WordTokenizer

    torch.manual_seed(0)
    words = ["a person with a backpack wearing a red striped top and dark trousers"]
    tokenizer = WordTokenizer.from_texts(words, vocab_size=512, context_length=32).to_config()
    model = LSMRL(LSMRLConfig(num_classes=200, tokenizer=tokenizer)).eval()
    model.refresh_prompt_bank()
    return model, "random-init lsmrl-mini, 200 identities (no committed checkpoint found)"


def build_vitb16_model(image_size=(256, 128)):
    """ViT-B/16 LSMRL (STFL on; SD/CMI need trained identities, so off), random init."""
    from lsmrl.model.lsmrl import LSMRL, LSMRLConfig

    torch.manual_seed(0)
    return LSMRL(LSMRLConfig(clip_model="ViT-B-16", image_size=tuple(image_size), num_classes=0,
                             sd=False, cmi=False)).eval()


def extraction_throughput(model, num_frames: int, batch_sizes=(1, 4), repeats: int = 3,
                          peak: PeakTracker | None = None, precision: str = "fp32") -> dict:
    """Tracklets/s of ``model`` on random (B, T, 3, H, W) batches, the best over ``batch_sizes``.

    Runs the retrieval path as extraction does (eval mode, ``torch.inference_mode``,
    every named stage, :func:`lsmrl.engine.extract.inference_autocast` in ``precision``:
    "fp32" or "bf16", forced, so that both are measured whatever ``auto`` would pick);
    achieved GFLOP/s use the explicit FLOP count of one batch (the same in both precisions).
    """
    from lsmrl.engine.extract import inference_autocast

    height, width = model.config.image_size
    model.eval()
    rows = []
    for batch in batch_sizes:
        frames = torch.randn(batch, num_frames, 3, height, width, generator=torch.Generator().manual_seed(0))
        modalities = ["visible", "infrared"] * (batch // 2) + ["visible"] * (batch % 2)
        flops = count_model_flops(model, frames, modalities)
        with torch.inference_mode(), inference_autocast(model, "cpu", precision):  # as extract_stages runs
            model(frames, modalities)  # warm-up
            times = []
            for _ in range(repeats):
                if peak is not None:
                    peak.probe()
                start = time.perf_counter()
                model(frames, modalities)
                times.append(time.perf_counter() - start)
        seconds = min(times)
        rows.append({"batch": batch, "seconds": round(seconds, 4), "tracklets_per_s": round(batch / seconds, 3),
                     "gflops_per_tracklet": round(flops / batch / 1e9, 3),
                     "gflops_per_s": round(flops / seconds / 1e9, 1)})
    best = max(rows, key=lambda row: row["gflops_per_s"])
    out = {"precision": precision, "frames": num_frames, "image_size": list(model.config.image_size),
           "best_batch": best["batch"],
           "tracklets_per_s": best["tracklets_per_s"], "gflops_per_s": best["gflops_per_s"],
           "gflops_per_tracklet": best["gflops_per_tracklet"], "by_batch": rows}
    if peak is not None:
        peak.probe()
        out["share_of_peak"] = round(best["gflops_per_s"] / peak.gflops, 3)
    return out


# --------------------------------------------------------------------------- retrieval
def cosine_topk(query, gallery, k: int):
    """Indices and similarities of the ``k`` rows of an L2-normalised ``gallery`` (N, D) most similar to ``query``."""
    import numpy as np

    scores = gallery @ query
    k = min(int(k), len(scores))
    top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    order = top[np.argsort(-scores[top], kind="stable")]
    return order, scores[order]


def retrieval_latency(dim: int, sizes=(1_000, 10_000, 100_000), top_k: int = 10, repeats: int = 50) -> dict:
    """p50/p95 latency (ms) of a cosine top-k over galleries of random L2-normalised embeddings."""
    import numpy as np

    rng = np.random.default_rng(0)
    out = {"retrieve_dim": dim, "retrieve_top_k": top_k}
    for size in sizes:
        gallery = rng.standard_normal((size, dim), dtype=np.float32)
        gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
        queries = rng.standard_normal((repeats + 3, dim), dtype=np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        times = []
        for i, query in enumerate(queries):
            start = time.perf_counter()
            cosine_topk(query, gallery, top_k)
            if i >= 3:  # the first calls warm the caches
                times.append((time.perf_counter() - start) * 1000)
        label = f"{size // 1000}k"
        out[f"retrieve_p50_ms_{label}"] = round(percentile(times, 50), 3)
        out[f"retrieve_p95_ms_{label}"] = round(percentile(times, 95), 3)
    return out


# --------------------------------------------------------------------------- UMAP
_UMAP_CHILD = r"""
import json, sys, time
start = time.perf_counter()
import numpy as np
from lsmrl.analysis.cache import AnalysisCache, CacheKey
from lsmrl.analysis.embedding import UMAPParams, umap_layouts
request = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
n, dim, ids = request["points"], request["dim"], request["identities"]
centres = rng.standard_normal((ids, dim)).astype(np.float32)
labels = np.arange(n) % ids
stages = {s: (centres[labels] + request["spread"][i] * rng.standard_normal((n, dim))).astype(np.float32)
          for i, s in enumerate(request["stages"])}
t_import = time.perf_counter()
import umap  # noqa: F401  (numba compiles or loads its cache here)
t_umap = time.perf_counter()
key = CacheKey("bench-umap", "synthetic", 6, "evenly", "bench", "features")
layouts = umap_layouts(stages, UMAPParams(), AnalysisCache(request["cache"]), key)
t_fit = time.perf_counter()
print(json.dumps({"import_umap_s": t_umap - t_import, "fit_s": t_fit - t_umap, "total_s": t_fit - start,
                  "stages": len(stages)}))
"""


def _umap_request(points: int, dim: int, cache: Path) -> dict:
    stages = ["baseline", "stfl", "sd", "cmi", "embedding"]
    return {"points": points, "dim": dim, "identities": max(2, points // 4), "cache": str(cache),
            "stages": stages, "spread": [1.2, 1.0, 0.9, 0.8, 0.7]}


def umap_timings(points: int = 400, dim: int = 128, workdir: Path | None = None, timeout_s: float = 600) -> dict:
    """UMAP of every app stage (baseline, STFL, SD, CMI, final) in fresh processes, and from the cache.

    ``umap_cold_s``: a fresh process with an empty numba cache (the first start of
    a Space): imports, ``import umap`` and the five seeded fits.
    ``umap_cold_numba_warm_s``: the same with numba's cache filled by that run (an app restart
    before the layouts are cached). ``umap_cached_s``: a UMAP view served from the
    analysis cache: reading the layouts (a new :class:`AnalysisCache`) and building
    the stage's plotly figure (median of 5, plotly already imported as in the app).
    Features are synthetic clusters of the embedded test split's size and the model's dim.
    """
    import subprocess
    import sys
    import tempfile

    owned = workdir is None
    root = Path(tempfile.mkdtemp(prefix="lsmrl-bench-umap-")) if owned else Path(workdir)
    numba_dir = root / "numba"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(numba_dir), "PYTHONPATH": str(REPO)}
    out: dict = {"umap_points": points, "umap_stages": 5}
    try:
        runs = {}
        for label, cache_name in (("cold", "cache-a"), ("numba_warm", "cache-b")):
            request = _umap_request(points, dim, root / cache_name)
            start = time.perf_counter()
            result = subprocess.run([sys.executable, "-c", _UMAP_CHILD, json.dumps(request)], env=env, cwd=str(REPO),
                                    capture_output=True, text=True, timeout=timeout_s)
            wall = time.perf_counter() - start
            if result.returncode != 0:
                raise RuntimeError(f"UMAP child failed: {result.stderr.strip()[-500:]}")
            runs[label] = {**json.loads(result.stdout.strip().splitlines()[-1]), "wall_s": wall}
        out["umap_cold_s"] = round(runs["cold"]["wall_s"], 2)
        out["umap_cold_import_s"] = round(runs["cold"]["import_umap_s"], 2)
        out["umap_cold_fit_s"] = round(runs["cold"]["fit_s"], 2)
        out["umap_cold_numba_warm_s"] = round(runs["numba_warm"]["wall_s"], 2)
        out["umap_numba_warm_import_s"] = round(runs["numba_warm"]["import_umap_s"], 2)

        import numpy as np

        from lsmrl.analysis.cache import AnalysisCache, CacheKey
        from lsmrl.analysis.embedding import UMAPParams, umap_figure, umap_layouts

        request = _umap_request(points, dim, root / "cache-a")
        stages = {s: np.zeros((points, dim), np.float32) for s in request["stages"]}  # never fitted: cache hit
        key = CacheKey("bench-umap", "synthetic", 6, "evenly", "bench", "features")
        meta = {"test_index": list(range(points)), "tid": [f"t{i}" for i in range(points)],
                "pid": [i % request["identities"] for i in range(points)], "camid": [1] * points,
                "modality": ["visible" if i % 2 else "infrared" for i in range(points)]}
        umap_figure(np.zeros((points, 2)), meta, "stfl")  # import plotly once, as the running app has
        times = []
        for _ in range(5):
            cache = AnalysisCache(request["cache"])
            start = time.perf_counter()
            layouts = umap_layouts(stages, UMAPParams(), cache, key)
            umap_figure(layouts, meta, "cmi", highlight_query=0, highlight_matches=[1, 2, 3],
                        match_correct=[True, False, True])
            times.append(time.perf_counter() - start)
            if cache.hits != 1:
                raise RuntimeError("the UMAP layouts were not served from the cache")
        out["umap_cached_s"] = round(percentile(times, 50), 4)
    finally:
        if owned:
            import shutil

            shutil.rmtree(root, ignore_errors=True)
    return out


# --------------------------------------------------------------------------- the app
def app_timings(app_args=(), timeout_s: float = 1200.0) -> dict:
    """App start, first answer and uploaded-video query, measured by ``python app/perf.py`` in a subprocess.

    The library never imports the app (or gradio): the app measures itself and hands back a JSON.
    """
    import subprocess
    import sys
    import tempfile

    if not (REPO / "app" / "perf.py").is_file():
        return {"app_start_s": None, "app_start_first_s": None, "video_query_s": None,
                "notes": {"app": "skipped: app/perf.py does not exist"}}
    with tempfile.TemporaryDirectory(prefix="lsmrl-bench-app-") as tmp:
        out = Path(tmp) / "app.json"
        command = [sys.executable, str(REPO / "app" / "perf.py"), "--json", str(out)]
        if app_args:
            command += ["--app-args", shlex.join(app_args)]
        done = subprocess.run(command, cwd=str(REPO), capture_output=True, text=True, timeout=timeout_s)
        if done.returncode != 0 or not out.is_file():
            raise RuntimeError(f"app/perf.py failed ({done.returncode}): {done.stderr.strip()[-400:]}")
        return json.loads(out.read_text())


# --------------------------------------------------------------------------- everything
def bench_all(checkpoint: str | Path | None = DEFAULT_CHECKPOINT, vitb_size=(256, 128), frames: int = 6,
              quick: bool = False, app: bool = True, umap: bool = True, app_args=(), log=print) -> dict:
    """Every figure of the Performance section in one run (see the module docstring); returns the JSON dict."""
    import datetime

    result: dict = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                    "machine": machine_info(), "notes": {}}
    repeats = 2 if quick else 3

    def section(name: str):
        log(f"[bench] {name} ...")
        return time.perf_counter()

    from lsmrl.device import inference_precision

    result["inference_precision_auto"] = inference_precision("auto", "cpu")
    peaks = {}
    for precision in ("fp32", "bf16"):
        start = section(f"{precision} matmul peak")
        result.update(matmul_peak(sizes=(1024, 2048) if quick else (1024, 2048, 3072), repeats=3 if quick else 5,
                                  precision=precision))
        peaks[precision] = PeakTracker(2048, result[_peak_key(precision)], precision)
        log(f"[bench]   {result[_peak_key(precision)]} GFLOP/s ({time.perf_counter() - start:.1f} s)")

    runs: dict[tuple[str, str], dict] = {}
    start = section("miniature model extraction, fp32 and bf16")
    mini, described = load_mini_model(checkpoint)
    for precision in ("fp32", "bf16"):
        runs["mini", precision] = extraction_throughput(
            mini, frames, batch_sizes=(4, 16) if quick else (1, 4, 16), repeats=repeats, peak=peaks[precision],
            precision=precision)
    result["mini_model"] = described
    embed_dim = int(mini.dim)
    del mini
    log(f"[bench]   {runs['mini', 'fp32']['tracklets_per_s']} / {runs['mini', 'bf16']['tracklets_per_s']} "
        f"tracklets/s ({time.perf_counter() - start:.1f} s)")

    start = section(f"ViT-B-16 extraction at {vitb_size[0]}x{vitb_size[1]}, fp32 and bf16")
    vitb = build_vitb16_model(vitb_size)
    for precision in ("fp32", "bf16"):
        runs["vitb16", precision] = extraction_throughput(
            vitb, frames, batch_sizes=(2,) if quick else (1, 4), repeats=repeats, peak=peaks[precision],
            precision=precision)
    del vitb
    # shares against the best peak of the same precision seen in the whole run (probed between timed repeats)
    for precision, peak in peaks.items():
        result[_peak_key(precision)] = round(peak.gflops, 1)
        result[f"{_peak_key(precision)[:-7]}_probes"] = peak.probes
    for (model_name, precision), run in runs.items():
        run["share_of_peak"] = round(run["gflops_per_s"] / peaks[precision].gflops, 3)
        infix = "" if precision == "fp32" else f"_{precision}"
        result[f"{model_name}_extract{infix}"] = run
        result[f"{model_name}_extract{infix}_tracklets_per_s"] = run["tracklets_per_s"]
        result[f"{model_name}_extract{infix}_gflops"] = run["gflops_per_s"]
        result[f"{model_name}{infix}_share_of_peak"] = run["share_of_peak"]
    result["mini_bf16_speedup"] = round(runs["mini", "bf16"]["tracklets_per_s"] /
                                        runs["mini", "fp32"]["tracklets_per_s"], 3)
    result["vitb16_bf16_speedup"] = round(runs["vitb16", "bf16"]["tracklets_per_s"] /
                                          runs["vitb16", "fp32"]["tracklets_per_s"], 3)
    log(f"[bench]   fp32 {runs['vitb16', 'fp32']['gflops_per_s']} GFLOP/s = "
        f"{runs['vitb16', 'fp32']['share_of_peak']:.0%} of {result['matmul_gflops']}; bf16 "
        f"{runs['vitb16', 'bf16']['gflops_per_s']} GFLOP/s = {runs['vitb16', 'bf16']['share_of_peak']:.0%} of "
        f"{result['matmul_bf16_gflops']} ({time.perf_counter() - start:.1f} s)")

    start = section("STFL / frame-wise / joint FLOPs at T=" + "/".join(map(str, COST_FRAMES)) + " (ViT-B-16)")
    result.update(flops_table(tuple(vitb_size), COST_FRAMES))
    log("[bench]   " + ", ".join(f"T={t}: STFL {result[f'stfl_flops_ratio_t{t}']}x, joint "
                                 f"{result[f'joint_flops_ratio_t{t}']}x" for t in COST_FRAMES)
        + f" ({time.perf_counter() - start:.1f} s)")

    start = section("retrieval latency")
    result.update(retrieval_latency(embed_dim, repeats=20 if quick else 50))
    log(f"[bench]   p95 {result['retrieve_p95_ms_1k']} / {result['retrieve_p95_ms_10k']} / "
        f"{result['retrieve_p95_ms_100k']} ms ({time.perf_counter() - start:.1f} s)")

    if umap:
        start = section("UMAP cold and cached (fresh processes)")
        try:
            result.update(umap_timings(points=_embedded_test_size(), dim=embed_dim))
            log(f"[bench]   cold {result['umap_cold_s']} s, numba-warm {result['umap_cold_numba_warm_s']} s, "
                f"cached {result['umap_cached_s']} s ({time.perf_counter() - start:.1f} s)")
        except Exception as error:  # noqa: BLE001
            result.update(umap_cold_s=None, umap_cached_s=None)
            result["notes"]["umap"] = f"failed: {type(error).__name__}: {str(error)[:300]}"
    else:
        result.update(umap_cold_s=None, umap_cached_s=None)
        result["notes"]["umap"] = "skipped (--no-umap)"

    if app:
        start = section("app start and uploaded-video query")
        try:
            app_result = app_timings(app_args=tuple(app_args))
            result["notes"].update(app_result.pop("notes"))
            result.update(app_result)
            log(f"[bench]   start {result.get('app_start_s')} s, video query {result.get('video_query_s')} s "
                f"({time.perf_counter() - start:.1f} s)")
        except Exception as error:  # noqa: BLE001
            result.update(app_start_s=None, video_query_s=None)
            result["notes"]["app"] = f"failed: {type(error).__name__}: {str(error)[:400]}"
    else:
        result.update(app_start_s=None, video_query_s=None)
        result["notes"]["app"] = "skipped (--no-app)"

    if hasattr(os, "getloadavg"):
        result["machine"]["load_1min_end"] = round(os.getloadavg()[0], 2)
    if not result["notes"]:
        del result["notes"]
    return result


def _embedded_test_size(data_root: Path = DEFAULT_DATA) -> int:
    info = data_root / "info" / "track_test_info.txt"
    try:
        return sum(1 for line in info.read_text().splitlines() if line.strip()) or 400
    except OSError:
        return 400


# =========================================================================== README report
PERF_START = "<!-- performance:start -->"
PERF_END = "<!-- performance:end -->"


def _fmt(value, digits: int = 1, unit: str = "") -> str:
    """``value`` with ``digits`` decimals and ``unit`` ("n/a" when missing)."""
    if value is None:
        return "n/a"
    text = f"{value:.{digits}f}" if isinstance(value, float) else str(value)
    return f"{text}{unit}"


def _percent(share) -> str:
    return "n/a" if share is None else f"{100 * share:.0f}%"


def _met(value, goal: float, at_most: bool = False) -> str:
    """" (met)" / " (missed)" for ``value`` against ``goal`` (at least, or ``at_most``); "" when not measured."""
    if value is None:
        return ""
    return " (met)" if (value <= goal if at_most else value >= goal) else " (missed)"


def load_rows(load_test: dict) -> list[tuple[str, str, str]]:
    """Report rows of ``app/loadtest.py``'s figures: per endpoint the app against the larger of its two floors
    (the no-op Gradio app's p95 in the same run, and the compute floor: the handlers' CPU seconds x calls /
    cores), then the no-op floor's own rows."""
    rows = []
    goal = load_test.get("goal_over_bound", 1.15)
    for name, figures in load_test.items():
        if not isinstance(figures, dict) or "p50_s" not in figures:
            continue
        floor = figures.get("floor") or {}
        bound = figures.get("bound_s")
        met = "" if figures.get("meets_goal") is None else (" (met)" if figures["meets_goal"] else " (missed)")
        rows.append((f"load: {figures.get('calls')} concurrent `/{name}` calls over loopback",
                     f"p50 {_fmt(figures.get('p50_s'), 2, ' s')}, p95 {_fmt(figures.get('p95_s'), 2, ' s')}, "
                     f"{figures.get('errors')} errors, {_fmt(figures.get('throughput_per_s'), 1)} calls/s",
                     f"bound {_fmt(bound, 2, ' s')} = max(no-op floor p95 {_fmt(floor.get('p95_s'), 2, ' s')}, "
                     f"compute floor {_fmt(figures.get('compute_floor_s'), 2, ' s')}); p95/bound "
                     f"{_fmt(figures.get('p95_over_bound'), 2)}x (goal: at most {goal}x, 0 errors){met}"))
    for name, figures in (load_test.get("floor") or {}).items():
        if not isinstance(figures, dict) or "p50_s" not in figures:
            continue
        rows.append((f"load, no-op Gradio floor: {figures.get('calls')} concurrent `/{name}` calls over loopback",
                     f"p50 {_fmt(figures.get('p50_s'), 2, ' s')}, p95 {_fmt(figures.get('p95_s'), 2, ' s')}, "
                     f"{figures.get('errors')} errors",
                     f"single call {_fmt(figures.get('single_s'), 3, ' s')}; the same API with empty handlers: "
                     "no handler can do better"))
    return rows


def render_report(data: dict) -> str:
    """The Performance block (markdown) from ``bench all`` JSON."""
    m = data.get("machine", {})
    load = ""
    if "load_1min_start" in m:
        load = f", 1-min load average {m['load_1min_start']}" + (
            f" -> {m['load_1min_end']}" if "load_1min_end" in m else "")
    vitb = data.get("vitb16_extract", {})
    mini = data.get("mini_extract", {})
    size = "x".join(str(v) for v in vitb.get("image_size", [256, 128]))
    frames = vitb.get("frames", 6)
    vitb_bf16 = data.get("vitb16_extract_bf16", {})
    auto = data.get("inference_precision_auto")
    rows = [
        ("fp32 matmul peak (best large square matmul)", f"{_fmt(data.get('matmul_gflops'))} GFLOP/s", ""),
        ("bf16 matmul peak (the same in bf16)", f"{_fmt(data.get('matmul_bf16_gflops'))} GFLOP/s",
         f"`auto` precision here: {auto}" if auto else ""),
        (f"ViT-B/16 + STFL feature extraction, fp32 ({size}, T={frames}, random init)",
         f"{_fmt(data.get('vitb16_extract_tracklets_per_s'), 2)} tracklets/s, "
         f"{_fmt(data.get('vitb16_extract_gflops'))} GFLOP/s = {_percent(data.get('vitb16_share_of_peak'))} "
         "of the fp32 peak", ""),
        (f"ViT-B/16 + STFL feature extraction, bf16 autocast ({size}, T={vitb_bf16.get('frames', frames)})",
         f"{_fmt(data.get('vitb16_extract_bf16_tracklets_per_s'), 2)} tracklets/s, "
         f"{_fmt(data.get('vitb16_extract_bf16_gflops'))} GFLOP/s = "
         f"{_percent(data.get('vitb16_bf16_share_of_peak'))} of the bf16 peak",
         "goal: at least 60% of the bf16 peak" + _met(data.get("vitb16_bf16_share_of_peak"), 0.60)),
        (f"miniature LSMRL feature extraction, fp32 (T={mini.get('frames', frames)})",
         f"{_fmt(data.get('mini_extract_tracklets_per_s'))} tracklets/s, {_fmt(data.get('mini_extract_gflops'))} "
         f"GFLOP/s", data.get("mini_model", "")),
        (f"miniature LSMRL feature extraction, bf16 autocast (T={mini.get('frames', frames)})",
         f"{_fmt(data.get('mini_extract_bf16_tracklets_per_s'))} tracklets/s = "
         f"{_fmt(data.get('mini_bf16_speedup'), 2)}x fp32",
         "goal: at least 1.8x fp32" + _met(data.get("mini_bf16_speedup"), 1.8)),
    ]
    cost_frames = data.get("flops_frames") or [t for t in (4, 8, 12, 24) if f"stfl_flops_ratio_t{t}" in data]
    for t in cost_frames:
        gflops = data.get(f"flops_t{t}_gflops") or {}
        stfl_ratio = data.get(f"stfl_flops_ratio_t{t}")
        rows.append((f"FLOPs of one tracklet at T={t} (ViT-B/16): frame-wise / STFL / joint attention",
                     f"{_fmt(gflops.get('frame-wise'))} / {_fmt(gflops.get('stfl'))} / {_fmt(gflops.get('joint'))} "
                     f"GFLOPs; STFL {_fmt(stfl_ratio, 3)}x, joint {_fmt(data.get(f'joint_flops_ratio_t{t}'), 3)}x",
                     f"goal: STFL at most {STFL_FLOPS_GOAL}x" + _met(stfl_ratio, STFL_FLOPS_GOAL, at_most=True)
                     + "; joint attention is the reference"))
    dim = data.get("retrieve_dim")
    for label in ("1k", "10k", "100k"):
        rows.append((f"retrieval, cosine top-{data.get('retrieve_top_k', 10)} over {label} tracklets (dim {dim})",
                     f"p50 {_fmt(data.get(f'retrieve_p50_ms_{label}'), 2, ' ms')}, "
                     f"p95 {_fmt(data.get(f'retrieve_p95_ms_{label}'), 2, ' ms')}",
                     "goal (1k, in the app): p95 at most 150 ms" if label == "1k" else ""))
    rows += [
        (f"UMAP of {data.get('umap_stages', 5)} stages x {data.get('umap_points', '?')} tracklets, fresh process, "
         "cold numba cache", f"{_fmt(data.get('umap_cold_s'), 1, ' s')}",
         f"of which import umap {_fmt(data.get('umap_cold_import_s'), 1, ' s')}"),
        ("the same, numba cache warm", f"{_fmt(data.get('umap_cold_numba_warm_s'), 1, ' s')}",
         f"of which import umap {_fmt(data.get('umap_numba_warm_import_s'), 1, ' s')}"),
        ("a UMAP view from the analysis cache (read + plotly figure)", f"{_fmt(data.get('umap_cached_s'), 3, ' s')}",
         "goal: at most 0.5 s"),
        ("a UMAP view in the running app, end to end (gradio_client `/modality_gap`)",
         f"{_fmt(data.get('app_umap_view_s'), 3, ' s')}",
         f"the first view after the very first launch: {_fmt(data.get('app_first_umap_view_s'), 1, ' s')}"),
        ("app start to first page (`python app/main.py`)", f"{_fmt(data.get('app_start_s'), 1, ' s')}",
         f"goal: at most 15 s warm; first launch {_fmt(data.get('app_start_first_s'), 1, ' s')}"),
        ("app start to the first answered call (model loaded, `/failures`)",
         f"{_fmt(data.get('app_ready_s'), 1, ' s')}",
         f"first launch {_fmt(data.get('app_ready_first_s'), 1, ' s')}"),
        ("uploaded 16-frame video query, end to end (gradio_client `/retrieve_video`)",
         f"{_fmt(data.get('video_query_s'), 2, ' s')}", "goal: at most 1.5 s"),
    ]
    rows += load_rows(data.get("load_test") or {})
    lines = [
        f"Measured by `python -m lsmrl bench all --json perf.json` on {data.get('date', '?')}: "
        f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('torch_threads', '?')} torch threads, "
        f"torch {m.get('torch', '?')}{load}. Regenerate this block with "
        "`python -m lsmrl bench report --json perf.json --readme README.md`.",
        "",
        "| what | measured | note |",
        "|---|---|---|",
    ]
    lines += [f"| {what} | {value} | {note} |" for what, value, note in rows]
    notes = data.get("notes") or {}
    if notes:
        lines.append("")
        lines += [f"- {name}: {text}" for name, text in sorted(notes.items())]
    return "\n".join(lines)


def update_readme(readme: str | Path, block: str) -> bool:
    """Replace the text between the performance markers (appending a Performance section if absent); True if changed."""
    from lsmrl.errors import LSMRLError

    path = Path(readme)
    if not path.is_file():
        raise LSMRLError(f"{path} not found: name the README to update with --readme")
    text = path.read_text(encoding="utf-8")
    if PERF_START in text and PERF_END in text:
        before, rest = text.split(PERF_START, 1)
        _, after = rest.split(PERF_END, 1)
        new = f"{before}{PERF_START}\n{block}\n{PERF_END}{after}"
    else:
        new = text.rstrip("\n") + f"\n\n## Performance\n\n{PERF_START}\n{block}\n{PERF_END}\n"
    if new != text:
        path.write_text(new, encoding="utf-8")
        return True
    return False


# =========================================================================== CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["model", "all", "report"],
                        help="model: STFL vs frame-wise vs joint attention; all: every Performance figure in one run "
                             "(JSON); report: write README's Performance block from that JSON")
    parser.add_argument("--clip-model", default="ViT-B-16", help="model: the CLIP architecture")
    parser.add_argument("--image-size", type=int, nargs=2, default=(256, 128), metavar=("H", "W"),
                        help="model and all: the ViT-B-16 input size (256x128 or 288x144)")
    parser.add_argument("--frames", type=int, nargs="+", default=None,
                        help="model: frame counts (default 4 8 12 24); all: T of the extraction runs (default 6)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None,
                        help="model: also write the rows as JSON; all: output JSON (required); report: input JSON")
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT),
                        help="all: the miniature checkpoint (random init if the file is absent)")
    parser.add_argument("--no-timing", action="store_true",
                        help="model: count FLOPs only (they do not depend on the machine's load; times do)")
    parser.add_argument("--quick", action="store_true", help="all: fewer sizes and repeats (a smoke run)")
    parser.add_argument("--no-app", action="store_true", help="all: skip the app launch and video query")
    parser.add_argument("--no-umap", action="store_true", help="all: skip the UMAP timings")
    parser.add_argument("--app-args", default="",
                        help="all: extra arguments of the launched `python app/main.py` (one string, e.g. "
                             "\"--checkpoint my.safetensors --data-root data/synthvvi\")")
    parser.add_argument("--readme", default="README.md", help="report: the README to update")


def run(args: argparse.Namespace) -> int:
    from lsmrl.errors import LSMRLError

    if args.what == "model":
        frames = tuple(args.frames or COST_FRAMES)
        rows = bench_model(args.clip_model, tuple(args.image_size), frames, args.repeats, timing=not args.no_timing)
        print(format_rows(rows, args.clip_model, tuple(args.image_size)))
        if args.json:
            with open(args.json, "w") as handle:
                json.dump([row.__dict__ for row in rows], handle, indent=2)
        return 0
    if not args.json:
        raise LSMRLError(f"bench {args.what} needs --json (the benchmark results file)")
    if args.what == "all":
        frames = (args.frames or [6])[0]
        data = bench_all(args.checkpoint, tuple(args.image_size), frames, quick=args.quick, app=not args.no_app,
                         umap=not args.no_umap, app_args=shlex.split(args.app_args))
        out = Path(args.json)
        if out.is_file():  # keep figures merged in by other tools (app/loadtest.py --json)
            try:
                previous = json.loads(out.read_text())
                if isinstance(previous, dict) and "load_test" in previous:
                    data.setdefault("load_test", previous["load_test"])
            except ValueError:
                pass
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(data, indent=2) + "\n")
        print(render_report(data))
        print(f"wrote {out}")
        return 0
    path = Path(args.json)
    if not path.is_file():
        raise LSMRLError(f"{path} not found: run `python -m lsmrl bench all --json {path}` first")
    data = json.loads(path.read_text())
    changed = update_readme(args.readme, render_report(data))
    print(f"{'updated' if changed else 'unchanged'}: the Performance block of {args.readme}")
    return 0
