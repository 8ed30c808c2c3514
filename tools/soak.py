"""A soak of the running app: a steady mix of calls for a while, the server's memory and upload folder watched.

``python tools/loadtest.py --soak SECONDS --json F`` launches ``python app/main.py`` with an upload folder of its
own (``GRADIO_TEMP_DIR``), calls every endpoint once, then warms up with the soak's own load for
``--soak-warmup`` seconds (default 60: the caches, the session store and the allocator's per-thread arenas fill
at the soak's concurrency, not at one call at a time), then keeps ``--soak-workers`` calls in flight for
SECONDS: each worker walks the same mix, from its own starting point, until the time is up:

- ``/retrieve`` of test tracklets in both directions (a different query each time),
- ``/retrieve_video`` of a 16-frame clip and of a two-person scene (uploaded each time, as a browser does),
- ``/detect_people`` on the scene, ``/attention`` (Grad-CAM), ``/modality_gap``, ``/impostors``,
  ``/diffusion`` and ``/export_ranking``.

Every 5 s it samples the server's resident memory (``VmRSS`` of its process) and the size of the upload folder.
It writes ``soak``: ``calls``, ``errors``, ``rss_start_mb`` (after the warm-up), ``rss_end_mb``, ``rss_max_mb``,
``rss_after_first_calls_mb`` (after the single pass, before the loaded warm-up),
``rss_growth`` (end over start, minus 1), ``temp_dir_mb_max``, ``p95_s_first_minute``, ``p95_s_last_minute`` and
their ratio, and counts per endpoint. The goal (:class:`SoakGoal`, what unattended hosting needs): 0 errors,
memory grown by under 15% after the warm-up, the upload folder under 500 MB and the last minute's p95 within
1.2x the first's.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tools.app_perf import LaunchedApp, sample_query_video
from tools.timing import percentile

IR2VIS = "infrared_to_visible"
VIS2IR = "visible_to_infrared"
SCENE_VIDEO = Path(__file__).resolve().parents[1] / "assets" / "cache" / "examples" / "scene-two-people.mp4"
SAMPLE_EVERY_S = 5.0


@dataclass(frozen=True)
class SoakGoal:
    """What a soak must show for the app to be left running unattended."""

    max_rss_growth: float = 0.15
    max_temp_dir_mb: float = 500.0
    max_last_over_first: float = 1.2


def rss_mb(pid: int) -> float | None:
    """Resident memory of process ``pid`` in MiB (``VmRSS``); None where /proc is absent."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def folder_mb(folder: Path) -> float:
    """The size of every file below ``folder`` in MiB (files removed while walking are skipped)."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total / 2**20


def call_mix(queries: list[tuple[str, str]], clip: Path, clip_modality: str) -> list[tuple[str, list]]:
    """One round of the mix: ``(endpoint, arguments)``; tracklet calls take the queries in turn."""
    mix: list[tuple[str, list]] = []
    for i, (tid, direction) in enumerate(queries[:4]):
        mix.append(("retrieve", [tid, direction, 10]))
        if i == 0:
            mix.append(("retrieve_video", [clip, clip_modality, 10]))
            mix.append(("attention", [tid, "", "gradcam", "match", direction, -1]))
        if i == 1:
            mix.append(("retrieve_video", [SCENE_VIDEO, "visible", 10, "auto"]))
            mix.append(("modality_gap", ["embedding", tid, direction, 5, "modality"]))
        if i == 2:
            mix.append(("detect_people", [SCENE_VIDEO]))
            mix.append(("impostors", [tid, direction]))
        if i == 3:
            mix.append(("diffusion", [tid, 5]))
            mix.append(("export_ranking", [tid, "csv"]))
    return mix


async def _soak(client, seconds: float, workers: int, mix_of, server_pid: int, temp_dir: Path, log) -> dict:
    records: list[tuple[float, float, str, bool]] = []  # (submitted at, latency, endpoint, ok)
    errors: list[str] = []
    samples: list[tuple[float, float | None, float]] = []
    start = time.perf_counter()
    deadline = start + seconds

    async def worker(offset: int) -> None:
        mix = mix_of(offset)
        step = 0
        while time.perf_counter() < deadline:
            name, arguments = mix[(offset + step) % len(mix)]
            step += 1
            submitted = time.perf_counter()
            try:
                await client.call(name, list(arguments))
                ok = True
            except Exception as error:  # noqa: BLE001 - an error is a result of the soak
                ok = False
                errors.append(f"/{name}: {type(error).__name__}: {str(error)[:160]}")
            records.append((submitted - start, time.perf_counter() - submitted, name, ok))

    async def sampler() -> None:
        while time.perf_counter() < deadline:
            samples.append((time.perf_counter() - start, rss_mb(server_pid), folder_mb(temp_dir)))
            await asyncio.sleep(SAMPLE_EVERY_S)

    tasks = [asyncio.ensure_future(worker(i)) for i in range(workers)] + [asyncio.ensure_future(sampler())]
    await asyncio.gather(*tasks)
    samples.append((time.perf_counter() - start, rss_mb(server_pid), folder_mb(temp_dir)))
    log(f"[soak] {len(records)} calls in {time.perf_counter() - start:.0f} s, {len(errors)} errors")
    return {"records": records, "errors": errors, "samples": samples, "wall_s": time.perf_counter() - start}


def summarise(raw: dict, rss_start: float | None, goal: SoakGoal = SoakGoal()) -> dict:
    """The ``soak`` figures of one run (see the module docstring) from its call records and samples."""
    records, samples = raw["records"], raw["samples"]
    wall = raw["wall_s"]
    first = [latency for at, latency, _, ok in records if ok and at < 60.0]
    last = [latency for at, latency, _, ok in records if ok and at >= wall - 60.0 - 1e-9 and at + latency <= wall]
    rss = [mb for _, mb, _ in samples if mb is not None]
    rss_end = rss[-1] if rss else None
    p95_first, p95_last = percentile(first, 95), percentile(last, 95)
    by_endpoint: dict[str, int] = {}
    for _, _, name, _ in records:
        by_endpoint[name] = by_endpoint.get(name, 0) + 1
    out = {
        "seconds": round(wall, 1), "calls": len(records), "errors": len(raw["errors"]),
        "error_examples": sorted(set(raw["errors"]))[:5], "calls_by_endpoint": by_endpoint,
        "rss_start_mb": _round(rss_start, 1), "rss_end_mb": _round(rss_end, 1), "rss_max_mb": _round(max(rss), 1)
        if rss else None,
        "rss_growth": _round(rss_end / rss_start - 1.0, 4) if rss_start and rss_end else None,
        "temp_dir_mb_max": _round(max(mb for _, _, mb in samples), 2) if samples else None,
        "temp_dir_mb_end": _round(samples[-1][2], 2) if samples else None,
        "p95_s_first_minute": _round(p95_first, 4), "p95_s_last_minute": _round(p95_last, 4),
        "calls_first_minute": len(first), "calls_last_minute": len(last),
        "last_over_first": _round(p95_last / p95_first, 3) if p95_first and p95_last else None,
        "samples": [{"t_s": round(t, 1), "rss_mb": _round(mb, 1), "temp_dir_mb": round(tmp, 2)}
                    for t, mb, tmp in samples],
    }
    out["meets_goal"] = bool(
        out["errors"] == 0 and out["rss_growth"] is not None and out["rss_growth"] < goal.max_rss_growth
        and out["temp_dir_mb_max"] is not None and out["temp_dir_mb_max"] < goal.max_temp_dir_mb
        and out["last_over_first"] is not None and out["last_over_first"] <= goal.max_last_over_first)
    out["goal"] = {"max_rss_growth": goal.max_rss_growth, "max_temp_dir_mb": goal.max_temp_dir_mb,
                   "max_last_over_first": goal.max_last_over_first}
    return out


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def run_soak(seconds: float, workers: int = 4, app_args=(), log=print, client_factory=None,
             query_ids=None, warmup_s: float = 60.0) -> dict:
    """Launch the app with its own upload folder, warm every endpoint up, soak it for ``seconds``; the figures.

    ``client_factory(url)`` and ``query_ids(client, count)`` are the load test's (:class:`tools.loadtest.LeanClient`
    and its query listing), passed in so that this module does not import the load test.
    """
    temp_dir = Path(tempfile.mkdtemp(prefix="lsmrl-soak-uploads-"))
    work = Path(tempfile.mkdtemp(prefix="lsmrl-soak-"))
    try:
        with LaunchedApp(timeout_s=300, extra_args=list(app_args), env={"GRADIO_TEMP_DIR": str(temp_dir)}) as app:
            log(f"[soak] launched the app at {app.url} (uploads in {temp_dir})")
            return asyncio.run(_run(app, seconds, workers, temp_dir, work, log, client_factory, query_ids,
                                    warmup_s))
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


async def _run(app, seconds, workers, temp_dir, work, log, client_factory, query_ids, warmup_s) -> dict:
    client = client_factory(app.url)
    try:
        started = time.perf_counter()
        while True:  # the first /failures waits for the model
            try:
                queries = await query_ids(client, 16)
                break
            except Exception:  # noqa: BLE001 - not serving yet
                if time.perf_counter() - started > 900:
                    raise
                await asyncio.sleep(2)
        # the first queries of both directions, alternating
        by_direction = {d: [q for q in queries if q[1] == d] for d in (IR2VIS, VIS2IR)}
        queries = [q for pair in zip(by_direction[IR2VIS], by_direction[VIS2IR]) for q in pair] or queries
        clip, clip_modality = sample_query_video(work / "query16.mp4")

        def mix_of(offset: int) -> list[tuple[str, list]]:
            rotated = queries[offset * 2:] + queries[:offset * 2]
            return call_mix(rotated, clip, clip_modality)

        log("[soak] warming up every endpoint once ...")
        for name, arguments in mix_of(0):
            await client.call(name, list(arguments))
        rss_first_calls = rss_mb(app.process.pid)
        if warmup_s > 0:
            log(f"[soak] after one call of each: {rss_first_calls:.0f} MiB; warming up with {workers} calls in flight "
                f"for {warmup_s:g} s ...")
            warm = await _soak(client, warmup_s, workers, mix_of, app.process.pid, temp_dir, log)
            if warm["errors"]:
                log(f"[soak] warm-up errors: {sorted(set(warm['errors']))[:3]}")
        rss_start = rss_mb(app.process.pid)
        log(f"[soak] server memory after the warm-up: {rss_start:.0f} MiB; soaking for {seconds:g} s with "
            f"{workers} calls in flight ...")
        raw = await _soak(client, seconds, workers, mix_of, app.process.pid, temp_dir, log)
        result = summarise(raw, rss_start)
        result.update(workers=workers, warmup_s=round(time.perf_counter() - started - raw["wall_s"], 1),
                      loaded_warmup_s=warmup_s, rss_after_first_calls_mb=round(rss_first_calls, 1),
                      upload_folder="GRADIO_TEMP_DIR of the launched app (removed afterwards)")
        return result
    finally:
        await client.close()


__all__ = ["SoakGoal", "call_mix", "folder_mb", "rss_mb", "run_soak", "summarise"]
