"""Benchmarks: ``python tools/bench.py {model,all,report}``.

``model``: parameters, FLOPs and CPU time of frame-wise CLIP, STFL and joint attention.
``all --json OUT``: every figure of README's Performance section in one run
(fp32 and bf16 matmul peaks, feature extraction of the miniature model and of ViT-B/16
in both precisions, each as a share of its own precision's peak, FLOPs and their
ratios at T=4/8/12/24, retrieval latency over 1k/10k/100k
galleries, UMAP cold and cached, and, through ``python tools/app_perf.py`` in a subprocess,
app start and an uploaded-video query end to end). Every figure is written next to the
CPU it ran on (model name, cores, load average).
``report --json OUT --readme README.md``: rewrites the block between
``<!-- performance:start -->`` and ``<!-- performance:end -->`` from that JSON.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __name__ == "__main__":  # `python tools/bench.py`: the checkout's root on the path, for lsmrl and tools
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sys

from lsmrl.device import inference_precision  # noqa: E402
from lsmrl.errors import LSMRLError
from tools.bench_flops import COST_FRAMES, bench_model, flops_table, format_rows  # noqa: E402
from tools.bench_report import render_report, update_readme  # noqa: E402
from tools.bench_speed import (
    DEFAULT_CHECKPOINT,
    DEFAULT_DATA,
    REPO,
    PeakTracker,
    build_vitb16_model,
    extraction_throughput,
    load_mini_model,
    matmul_peak,
    peak_key,
    retrieval_latency,
    umap_timings,
)
from tools.command import run_command  # noqa: E402
from tools.machine import machine_info

#: Kept runs, one ``bench all`` JSON per CPU kind (``report`` renders the by-CPU table from them).
PERF_RUNS = REPO / "docs" / "perf"


def app_timings(app_args=(), timeout_s: float = 1200.0) -> dict:
    """App start, first answer and uploaded-video query, measured by ``python tools/app_perf.py`` in a subprocess.

    The library never imports the app (or gradio): the app measures itself and hands back a JSON.
    """
    if not (REPO / "tools" / "app_perf.py").is_file():
        return {"app_start_s": None, "app_start_first_s": None, "video_query_s": None,
                "notes": {"app": "skipped: tools/app_perf.py does not exist"}}
    with tempfile.TemporaryDirectory(prefix="lsmrl-bench-app-") as tmp:
        out = Path(tmp) / "app.json"
        command = [sys.executable, str(REPO / "tools" / "app_perf.py"), "--json", str(out)]
        if app_args:
            command += ["--app-args", shlex.join(app_args)]
        done = subprocess.run(command, cwd=str(REPO), capture_output=True, text=True, timeout=timeout_s)
        if done.returncode != 0 or not out.is_file():
            raise RuntimeError(f"tools/app_perf.py failed ({done.returncode}): {done.stderr.strip()[-400:]}")
        return json.loads(out.read_text())


# --------------------------------------------------------------------------- everything
def bench_all(checkpoint: str | Path | None = DEFAULT_CHECKPOINT, vitb_size=(256, 128), frames: int = 6,
              quick: bool = False, app: bool = True, umap: bool = True, app_args=(), log=print) -> dict:
    """Every figure of the Performance section in one run (see the module docstring); returns the JSON dict."""
    result: dict = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                    "machine": machine_info(), "notes": {}}
    repeats = 2 if quick else 3

    def section(name: str):
        log(f"[bench] {name} ...")
        return time.perf_counter()

    result["inference_precision_auto"] = inference_precision("auto", "cpu")
    peaks = {}
    for precision in ("fp32", "bf16"):
        start = section(f"{precision} matmul peak")
        result.update(matmul_peak(sizes=(1024, 2048) if quick else (1024, 2048, 3072), repeats=3 if quick else 5,
                                  precision=precision))
        peaks[precision] = PeakTracker(2048, result[peak_key(precision)], precision)
        log(f"[bench]   {result[peak_key(precision)]} GFLOP/s ({time.perf_counter() - start:.1f} s)")

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
        result[peak_key(precision)] = round(peak.gflops, 1)
        result[f"{peak_key(precision)[:-7]}_probes"] = peak.probes
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
    parser.add_argument("--runs", default=str(PERF_RUNS),
                        help="report: a folder of kept runs (one `bench all` JSON per CPU kind) for the by-CPU table")


def run(args: argparse.Namespace) -> int:
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
        if out.is_file():  # keep figures merged in by other tools (tools/loadtest.py --json)
            try:
                previous = json.loads(out.read_text())
                for key in ("load_test", "soak"):
                    if isinstance(previous, dict) and key in previous:
                        data.setdefault(key, previous[key])
            except ValueError:
                pass
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(data, indent=2) + "\n")
        print(render_report(data))
        print(f"wrote {out}")
        return 0
    path = Path(args.json)
    if not path.is_file():
        raise LSMRLError(f"{path} not found: run `python tools/bench.py all --json {path}` first")
    data = json.loads(path.read_text())
    runs = [json.loads(p.read_text()) for p in sorted(Path(args.runs).glob("*.json"))] if args.runs else []
    changed = update_readme(args.readme, render_report(data, runs))
    print(f"{'updated' if changed else 'unchanged'}: the Performance block of {args.readme}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command("python tools/bench.py", __doc__, add_arguments, run, argv)

if __name__ == "__main__":
    sys.exit(main())
