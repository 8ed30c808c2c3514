"""The README's Performance block, rendered from ``python tools/bench.py all --json`` (``bench.py report``).

The block sits between ``<!-- performance:start -->`` and ``<!-- performance:end -->``;
:func:`update_readme` rewrites only that block.
"""

from __future__ import annotations

from pathlib import Path

from lsmrl.errors import LSMRLError
from tools.bench_flops import STFL_FLOPS_GOAL

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
    """Report rows of ``tools/loadtest.py``'s figures: per endpoint the app against the larger of its two floors
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


def cpu_kind(data: dict) -> str:
    """How a run's CPU is named in the by-CPU table: its model name and the flags that decide bf16's speed."""
    machine = data.get("machine") or {}
    flags = [f for f in machine.get("cpu_flags") or [] if "bf16" in f or f.startswith("amx")]
    return f"{machine.get('cpu', '?')}" + (f" ({', '.join(flags)})" if flags else " (no native bf16)")


def render_by_cpu(runs: list[dict]) -> str:
    """One row per CPU kind (the newest run of each): the figures that differ between our machines."""
    newest: dict[str, dict] = {}
    for run in sorted(runs, key=lambda r: r.get("date", "")):
        newest[cpu_kind(run)] = run
    lines = ["| CPU | measured | fp32 / bf16 matmul peak GFLOP/s | `auto` precision | ViT-B/16 bf16 share of peak | "
             "mini bf16 / fp32 | load p95 / bound: `/retrieve`, `/retrieve_video` | 10-min soak |",
             "|---|---|---|---|---|---|---|---|"]
    for kind, run in sorted(newest.items()):
        load = run.get("load_test") or {}
        soak = run.get("soak") or {}
        bounds = ", ".join(_fmt((load.get(name) or {}).get("p95_over_bound"), 2, "x")
                           for name in ("retrieve", "retrieve_video"))
        growth = soak.get("rss_growth")
        soak_text = "n/a" if not soak else (
            f"{soak.get('errors')} errors, memory {_fmt(None if growth is None else 100 * growth, 1, '%')}, "
            f"last/first p95 {_fmt(soak.get('last_over_first'), 2, 'x')}"
            + (" (met)" if soak.get("meets_goal") else " (missed)"))
        load_note = (run.get("machine") or {}).get("load_1min_start")
        lines.append(f"| {kind} | {run.get('date', '?')} (load {_fmt(load_note, 1)}) | "
                     f"{_fmt(run.get('matmul_gflops'))} / {_fmt(run.get('matmul_bf16_gflops'))} | "
                     f"{run.get('inference_precision_auto', 'n/a')} | {_percent(run.get('vitb16_bf16_share_of_peak'))} | "
                     f"{_fmt(run.get('mini_bf16_speedup'), 2, 'x')} | {bounds} | {soak_text} |")
    return "\n".join(lines)


def soak_rows(soak: dict) -> list[tuple[str, str, str]]:
    """Report rows of ``tools/loadtest.py --soak``: errors, memory after the warm-up, the upload folder and
    whether the last minute is as fast as the first."""
    if not soak:
        return []
    goal = soak.get("goal") or {}
    growth = soak.get("rss_growth")
    met = " (met)" if soak.get("meets_goal") else " (missed)"
    return [(f"soak: {soak.get('seconds', 0) / 60:.0f} min, {soak.get('workers')} calls in flight, the whole API's mix",
             f"{soak.get('calls')} calls, {soak.get('errors')} errors; server memory {_fmt(soak.get('rss_start_mb'), 0)} "
             f"-> {_fmt(soak.get('rss_end_mb'), 0)} MiB ({_fmt(None if growth is None else 100 * growth, 1, '%')}); "
             f"upload folder at most {_fmt(soak.get('temp_dir_mb_max'), 1, ' MB')}; p95 first / last minute "
             f"{_fmt(soak.get('p95_s_first_minute'), 2, ' s')} / {_fmt(soak.get('p95_s_last_minute'), 2, ' s')}",
             f"goal: 0 errors, memory under +{100 * goal.get('max_rss_growth', 0.15):.0f}% after the warm-up, upload "
             f"folder under {goal.get('max_temp_dir_mb', 500):.0f} MB, last minute within "
             f"{goal.get('max_last_over_first', 1.2)}x the first{met}")]


def render_report(data: dict, runs: list[dict] | None = None) -> str:
    """The Performance block (markdown) from ``bench all`` JSON; with ``runs`` (every kept run, one JSON per CPU
    kind) a by-CPU table follows."""
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
        (f"ViT-B/16 + STFL feature extraction, bf16 ({size}, T={vitb_bf16.get('frames', frames)})",
         f"{_fmt(data.get('vitb16_extract_bf16_tracklets_per_s'), 2)} tracklets/s, "
         f"{_fmt(data.get('vitb16_extract_bf16_gflops'))} GFLOP/s = "
         f"{_percent(data.get('vitb16_bf16_share_of_peak'))} of the bf16 peak",
         "goal: at least 60% of the bf16 peak" + _met(data.get("vitb16_bf16_share_of_peak"), 0.60)),
        (f"miniature LSMRL feature extraction, fp32 (T={mini.get('frames', frames)})",
         f"{_fmt(data.get('mini_extract_tracklets_per_s'))} tracklets/s, {_fmt(data.get('mini_extract_gflops'))} "
         f"GFLOP/s", data.get("mini_model", "")),
        (f"miniature LSMRL feature extraction, bf16 (T={mini.get('frames', frames)})",
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
    rows += soak_rows(data.get("soak") or {})
    lines = [
        f"Measured by `python tools/bench.py all --json perf.json` on {data.get('date', '?')}: "
        f"{cpu_kind(data)}, {m.get('cores', '?')} cores, {m.get('torch_threads', '?')} torch threads, "
        f"torch {m.get('torch', '?')}{load}. Regenerate this block with "
        "`python tools/bench.py report --json perf.json --readme README.md` (adds the by-CPU table from `docs/perf/`).",
        "",
        "| what | measured | note |",
        "|---|---|---|",
    ]
    lines += [f"| {what} | {value} | {note} |" for what, value, note in rows]
    notes = data.get("notes") or {}
    if notes:
        lines.append("")
        lines += [f"- {name}: {text}" for name, text in sorted(notes.items())]
    if runs:
        lines += ["", "**By CPU kind** (the newest run of each, from the JSON files in `docs/perf/`; our machines "
                  "differ between sessions, and bf16's speed with them):", "", render_by_cpu(runs)]
    return "\n".join(lines)


def update_readme(readme: str | Path, block: str) -> bool:
    """Replace the text between the performance markers (appending a Performance section if absent); True if changed."""
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


