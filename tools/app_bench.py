"""Latency figures of the app, measured server-side (``python tools/app_bench.py``; prints a table).

=======================  ===========================================================  ========
figure                   what is timed                                                 target
=======================  ===========================================================  ========
retrieval (selected)     ``/retrieve`` handler: rank one test query + render top-10     150 ms
                         strips (p95 over random queries; frames cache cold at first)
retrieval, 1k gallery    distances of one query to a 1,000-tracklet gallery (the test   150 ms
                         split's embeddings tiled with noise), sort, render top-10
                         strips from frames read from disk
/retrieve over HTTP      the same through gradio_client (queue, postprocess, files)    (info)
upload, 16 frames        ``/retrieve_video`` handler end to end: probe + decode in a    1.5 s
                         child process, embed, rank, render
UMAP view                ``/modality_gap`` handler per stage, layouts from the disk     0.5 s
                         cache (first view of each stage) and from memory
first page (warm)        ``python app/main.py`` start -> HTTP 200 on ``/``              15 s
model ready (warm)       start -> first ``/retrieve`` answered through gradio_client    (info)
=======================  ===========================================================  ========

The start-up figures run the app in a subprocess with a fresh writable cache
seeded from the shipped one (``checkpoints/cache``): exactly a warm install.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__":
    _APP_DIR = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or os.getcwd()).resolve() != _APP_DIR]
if str(_REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(_REPO_ROOT))

from app import config as app_config  # noqa: E402
from app import resources as app_resources  # noqa: E402
from lsmrl.data.video_write import write_video
from lsmrl.evaluation.distance import compute_distance
from lsmrl.viz.images import tracklet_strip
from tools.app_perf import LaunchedApp
from tools.timing import latency_summary  # noqa: E402

TARGETS = {"retrieval": 0.150, "retrieval_1k": 0.150, "upload_16": 1.5, "umap_disk": 0.5, "umap_memory": 0.5,
           "first_page": 15.0}


def _stats(name: str, label: str, times: list[float]) -> dict:
    row = {"name": name, "label": label, **latency_summary(times)}
    target = TARGETS.get(name)
    row["target"] = target
    row["ok"] = None if target is None else bool(row["p95"] <= target)
    return row


def bench_handlers(config: app_config.AppConfig, repeat: int = 50, seed: int = 0) -> list[dict]:
    """In-process figures: retrieval, 1k-gallery ranking, upload, UMAP views."""
    import numpy as np

    from app.callbacks import Callbacks
    resources = app_resources.Resources(config, precompute=False).start()
    explorer = resources.explorer()
    cb = Callbacks(resources)
    rng = np.random.default_rng(seed)
    rows = []
    direction = explorer.directions[0]
    queries = explorer.queries(direction)

    # retrieval of a selected test tracklet (handler: rank + strips)
    picks = rng.choice(len(queries), size=min(repeat, len(queries)), replace=False)
    times = []
    for i in picks:
        start = time.perf_counter()
        cb.retrieve(queries[int(i)]["tid"], direction, 10)
        times.append(time.perf_counter() - start)
    rows.append(_stats("retrieval", f"/retrieve handler, top-10 strips ({len(explorer.dataset.test)} test tracklets)",
                       times))

    # the same over a 1,000-tracklet gallery (fresh distances, sort, strips)
    embedding = explorer.main.features["embedding"].astype(np.float32)
    gallery_rows = np.asarray(explorer.dataset.directions[direction][1]).reshape(-1)
    reps = int(np.ceil(1000 / len(gallery_rows)))
    base = np.tile(embedding[gallery_rows], (reps, 1))[:1000]
    gallery = base + 0.01 * rng.standard_normal(base.shape).astype(np.float32)
    source = np.tile(gallery_rows, reps)[:1000]
    times = []
    for i in picks:
        q = queries[int(i)]["test_index"]
        cb._frames = type(cb._frames)()  # cold: the 10 strips' frames are read from disk every time
        start = time.perf_counter()
        distances = np.asarray(compute_distance(embedding[q][None], gallery, explorer.dataset.metric))[0]
        order = np.argsort(distances, kind="stable")[:10]
        for column in order:
            tracklet_strip(cb.frames(explorer, int(source[column])), border="match", label_lines=["#", "id"])
        times.append(time.perf_counter() - start)
    rows.append(_stats("retrieval_1k", "1,000-tracklet gallery: distances + sort + top-10 strips (frames read "
                       "from disk)", times))

    # an uploaded 16-frame video, end to end
    tmp = Path(tempfile.mkdtemp(prefix="lsmrl-bench-"))
    try:
        query = queries[0]
        video = write_video(explorer.tracklet_frames(query["test_index"], 16), tmp / "query.mp4")
        times = []
        for _ in range(max(3, min(10, repeat // 5))):
            start = time.perf_counter()
            cb.retrieve_video(str(video), query["modality"], 10)
            times.append(time.perf_counter() - start)
        rows.append(_stats("upload_16", "/retrieve_video handler, 16-frame mp4 (decode in a child process)", times))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # UMAP views: the first view reads the layouts from the disk cache, later ones from memory
    cached = explorer.umap_cached()
    first, later = [], []
    for number, stage in enumerate(explorer.stages):
        start = time.perf_counter()
        cb.modality_gap(stage, queries[number]["tid"], direction, 5)
        (first if number == 0 else later).append(time.perf_counter() - start)
    for stage in explorer.stages:
        start = time.perf_counter()
        cb.modality_gap(stage, queries[-1]["tid"], direction, 5)
        later.append(time.perf_counter() - start)
    rows.append(_stats("umap_disk", "/modality_gap, first view (layouts read from the disk cache)"
                       if cached else "/modality_gap, first view (UMAP FITTED: not in the cache)", first))
    rows.append(_stats("umap_memory", "/modality_gap, every stage (layouts in memory)", later))
    return rows


def bench_startup(argv: list[str] | None = None, repeat_http: int = 20, timeout: float = 600.0,
                  seeds: tuple[Path, ...] = ()) -> list[dict]:
    """``python app/main.py`` in a subprocess (:class:`app.perf.LaunchedApp`) with a fresh cache seeded from the
    shipped one (a warm install) and ``seeds`` (e.g. the cache a user's own checkpoint already has)."""
    from gradio_client import Client

    cache = Path(tempfile.mkdtemp(prefix="lsmrl-bench-cache-"))
    app_resources.seed_cache(cache, list(seeds))
    rows = []
    try:
        with LaunchedApp(timeout_s=timeout, extra_args=list(argv or []), env={"LSMRL_CACHE_DIR": str(cache)}) as app:
            rows.append(_stats("first_page", "app start -> first page (HTTP 200), warm install", [app.start_s]))
            client = Client(app.url, verbose=False, download_files=False)
            query = None
            while query is None:  # /failures answers once the model is ready; it names a query
                table = client.predict("infrared_to_visible", "ap", 5, api_name="/failures")[0]
                query = table["data"][-1][1]
            client.predict(query, "infrared_to_visible", 10, api_name="/retrieve")
            rows.append(_stats("model_ready", "app start -> first /retrieve answered (gradio_client)",
                               [time.perf_counter() - app.launched_at]))
            times = []
            for _ in range(repeat_http):
                t0 = time.perf_counter()
                client.predict(query, "infrared_to_visible", 10, api_name="/retrieve")
                times.append(time.perf_counter() - t0)
            rows.append(_stats("retrieve_http", "/retrieve through gradio_client (HTTP + queue + postprocess, "
                               "files not downloaded)", times))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return rows


def format_table(rows: list[dict]) -> str:
    lines = [f"{'figure':<14} {'p50':>9} {'p95':>9} {'max':>9} {'n':>4} {'target':>8}  ok   what",
             "-" * 110]
    for r in rows:
        if r["target"] is None:
            target = ""
        else:
            target = f"{r['target'] * 1000:.0f} ms" if r["target"] < 1 else f"{r['target']:g} s"
        ok = "" if r["ok"] is None else "yes" if r["ok"] else "NO"

        def fmt(seconds: float) -> str:
            return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"

        lines.append(f"{r['name']:<14} {fmt(r['p50']):>9} {fmt(r['p95']):>9} {fmt(r['max']):>9} {r['n']:>4} "
                     f"{target:>8}  {ok:<4} {r['label']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from app.main import build_parser, config_from_args

    parser = build_parser()
    parser.prog = "python tools/app_bench.py"
    parser.description = "Latency figures of the app (same model flags as app/main.py)."
    parser.add_argument("--repeat", type=int, default=50, help="queries timed per figure (default 50)")
    parser.add_argument("--no-startup", action="store_true", help="skip the start-up figures (subprocess)")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    app_config.configure_environment()
    config = config_from_args(args)
    problems = config.problems()
    if problems:
        print("error: " + "; ".join(problems), file=sys.stderr)
        return 2
    print(f"benchmarking {config.describe()} on {os.cpu_count()} CPU cores", flush=True)
    rows = []
    if not args.no_startup:
        passthrough = []
        for flag in ("checkpoint", "compare_checkpoint", "baseline_checkpoint", "data_root", "num_frames"):
            value = getattr(args, flag)
            if value is not None:
                passthrough += [f"--{flag.replace('_', '-')}", str(value)]
        passthrough += ["--dataset", args.dataset]
        rows += bench_startup(passthrough, seeds=(config.effective_cache_dir,))
    rows = bench_handlers(config, args.repeat) + rows
    print(format_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
