"""Load test of a running LSMRL Explorer: concurrent ``/retrieve`` and ``/retrieve_video`` calls over loopback.

``python tools/loadtest.py [--url http://127.0.0.1:7860/] [--retrieve 50] [--retrieve-video 10] [--json perf.json]``

Without ``--url`` the app is launched (``python app/main.py --port P`` in a
subprocess) and stopped at the end. The run is bounded in count (the numbers of
calls) and in time (``--timeout`` seconds for everything; calls still running
then count as errors). Steps:

1. warm up (the first call waits for the model to load) and take the
   single-call baseline of each endpoint (median of a few sequential calls);
2. phase ``retrieve``: ``--retrieve`` calls to ``/retrieve`` submitted at once
   (queries from the public ``/failures`` table, both directions);
3. phase ``retrieve_video``: ``--retrieve-video`` uploads of a 16-frame mp4 to
   ``/retrieve_video`` submitted at once;
4. report per phase: p50, p95 and max latency (submit to result), errors,
   throughput (calls answered per second), the single-call baseline, and the
   CPU seconds the load generator (and a launched server) used;
5. ``--floor``: the same phases against a *no-op* Gradio app with the same API
   (``--serve-floor``: same endpoints, inputs, outputs, queue settings and
   11 strip images per answer, but no model and no work in the handlers). Its
   p95 is the floor Gradio itself sets on this machine: no handler can do
   better than an empty one;
6. the compute floor (:func:`handler_costs`, after the phases): the handlers
   called in this process without Gradio, their CPU seconds per call x calls /
   cores: the work no server can skip. The goal (:func:`apply_bounds`): 0
   errors and p95 at most 1.15x the larger of the two floors.

The queue settings the app launches with (concurrency limits, bounded size)
are read by building the app's Blocks in this process without serving it
(:func:`queue_settings`). ``--json`` merges the figures into a ``bench all``
JSON file under ``load_test`` (``python tools/bench.py report`` shows them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__":  # `python tools/loadtest.py` puts app/, not the root, on sys.path
    _APP_DIR = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or os.getcwd()).resolve() != _APP_DIR]
if str(_REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(_REPO_ROOT))

import asyncio
import shlex

from tools.app_perf import LaunchedApp, sample_query_video
from tools.machine import machine_info  # noqa: E402
from tools.soak import run_soak  # noqa: E402
from tools.timing import percentile, process_cpu_seconds, time_calls  # noqa: E402

IR2VIS = "infrared_to_visible"
VIS2IR = "visible_to_infrared"
#: The goal: p95 at most this many times the larger of the two floors (below), with no errors.
GOAL_OVER_BOUND = 1.15
FLOOR_STRIP_SIZE = (390, 166)  # width, height of the demo's strips (6 frames of 64x128 and borders)


# =========================================================================== queue settings
def queue_settings() -> dict:
    """The queue the app launches with: default concurrency, max size, and per public event its limit.

    Builds the Blocks exactly as ``app/main.py`` does (no model is loaded) and
    runs :func:`app.main.launch_app` with ``launch`` replaced by a no-op that records its arguments, so
    ``demo.queue(...)`` is the app's own call.
    """
    from app import config as app_config
    from app import resources as app_resources

    app_config.configure_environment()
    from app.main import build_app, launch_app

    demo = build_app(app_resources.Resources(app_config.AppConfig.resolve()), start=False)
    captured: dict = {}
    demo.launch = lambda **kwargs: captured.update(kwargs)  # type: ignore[method-assign]
    launch_app(demo, host="127.0.0.1", port=7860, quiet=True, prevent_thread_lock=True)
    queue = demo._queue
    default = getattr(queue, "default_concurrency_limit", None)
    events = {}
    for fn in demo.fns.values():
        if fn.api_name in ("retrieve", "retrieve_video", "attention", "diffusion", "modality_gap", "failures",
                           "impostors", "export_ranking", "model_card", "compare"):
            limit = fn.concurrency_limit
            events[fn.api_name] = {"concurrency_limit": default if limit == "default" else limit,
                                   "concurrency_id": fn.concurrency_id, "queued": bool(fn.queue)}
    return {"max_size": queue.max_size, "default_concurrency_limit": default, "events": events,
            "max_file_size": captured.get("max_file_size"), "allowed_paths": captured.get("allowed_paths")}


def queue_problems(settings: dict) -> list[str]:
    """What is missing from the queue settings (empty when bounded and limited)."""
    problems = []
    if settings.get("max_size") is None:
        problems.append("the queue is unbounded: call demo.queue(max_size=...)")
    if not settings.get("default_concurrency_limit"):
        problems.append("no default concurrency limit: call demo.queue(default_concurrency_limit=...)")
    for name, event in settings.get("events", {}).items():
        if event["concurrency_limit"] is None:
            problems.append(f"/{name} has no concurrency limit")
        if not event["queued"]:
            problems.append(f"/{name} bypasses the queue")
    return problems


# =========================================================================== the Gradio floor
def _floor_images(folder: Path, count: int = 11) -> list[str]:
    """``count`` PNGs in ``folder`` shaped like the demo's strips: 390x166 (6 frames of 64x128 with borders) and
    about 85 KB each (the demo's rendered strips are 70-85 KB), from a fixed seed."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    files = []
    for i in range(count):
        target = folder / f"strip{i:02d}.png"
        # a smooth background with a noisy person-sized block, to compress like a rendered strip
        image = np.tile(np.linspace(40, 200, FLOOR_STRIP_SIZE[0], dtype=np.float32)[None, :, None],
                        (FLOOR_STRIP_SIZE[1], 1, 3))
        image[20:150, 30:360] += rng.normal(0, 6, (130, 330, 3))
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(target)
        files.append(str(target))
    return files


def build_floor_app(folder: Path):
    """A no-op Gradio app with the app's load-tested API: ``/retrieve``, ``/retrieve_video`` and ``/failures``
    take the same inputs and return the same outputs (ranked JSON, Markdown, query strip, a gallery of 10
    strips, the selection state) as ``app/ui.py``, from images rendered once, with no model and no work.
    The queue settings are the app's own (:mod:`app.main`)."""
    import gradio as gr

    from app.main import CONCURRENCY, QUEUE_SIZE

    files = _floor_images(folder)
    items = [{"rank": i + 1, "tid": f"G{i:04d}", "similarity": 0.5} for i in range(10)]

    def answer(*_inputs):
        return ({"query": {"tid": "Q0000"}, "items": items}, "no-op answer", files[0],
                [(path, f"rank {i + 1}") for i, path in enumerate(files[1:])], {"items": [i["tid"] for i in items]})

    def failures(*_inputs):
        rows = [[i + 1, f"Q{i:04d}", 0.0] for i in range(50)]
        return {"headers": ["#", "query", "AP"], "data": rows}, "no-op table"

    with gr.Blocks(analytics_enabled=False) as demo:
        query = gr.Textbox(value="Q0000")
        direction = gr.Radio([IR2VIS, VIS2IR], value=IR2VIS)
        top_k = gr.Slider(1, 50, value=10, step=1)
        video, modality = gr.Video(), gr.Radio(["infrared", "visible"], value="infrared")
        person = gr.Textbox(value="auto")  # /retrieve_video's person: "auto" or a track id
        selection = gr.State({})
        ranked, summary, query_strip, results = gr.JSON(), gr.Markdown(), gr.Image(type="filepath"), gr.Gallery()
        rows, sort, table, note = gr.Number(), gr.Textbox(), gr.Dataframe(), gr.Markdown()  # /failures: query ids
        outputs = [ranked, summary, query_strip, results, selection]
        gr.Button("retrieve").click(answer, [query, direction, top_k], outputs, api_name="retrieve")
        gr.Button("video").click(answer, [video, modality, top_k, person], outputs, api_name="retrieve_video",
                                 concurrency_id="retrieve_video", concurrency_limit=2)
        gr.Button("failures").click(failures, [direction, sort, rows], [table, note], api_name="failures")
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    return demo, folder


def serve_floor(port: int) -> None:
    """``--serve-floor``: serve :func:`build_floor_app` on ``port`` until killed."""
    folder = Path(tempfile.mkdtemp(prefix="lsmrl-floor-"))
    demo, folder = build_floor_app(folder)
    demo.launch(server_name="127.0.0.1", server_port=port, allowed_paths=[str(folder)], quiet=True,
                ssr_mode=False)


# =========================================================================== calls
class LeanClient:
    """Gradio's documented HTTP API (``POST /gradio_api/call/<name>``, then the event's SSE stream), from one
    asyncio loop with httpx, fetching every returned file as a browser does.

    One thread for all the calls in flight: a load generator on the machine it measures must cost little (the
    thread-per-call ``gradio_client`` used 6x the server's CPU here and became the bottleneck).
    """

    def __init__(self, url: str, download: bool = True, timeout_s: float = 600.0):
        import httpx

        self.url = url.rstrip("/")
        self.download = download
        self.http = httpx.AsyncClient(timeout=timeout_s, limits=httpx.Limits(max_connections=600,
                                                                              max_keepalive_connections=600))

    async def close(self) -> None:
        await self.http.aclose()

    async def upload(self, path: Path) -> dict:
        with open(path, "rb") as handle:
            response = await self.http.post(f"{self.url}/gradio_api/upload",
                                             files=[("files", (path.name, handle, "video/mp4"))])
        response.raise_for_status()
        return {"path": response.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}

    async def defaults(self, name: str) -> list:
        """The default value of every input of ``/name`` (None where it has none), from ``/gradio_api/info``
        (read once): a call that names fewer inputs gets the rest from here, as a browser form would."""
        if not hasattr(self, "_defaults"):
            response = await self.http.get(f"{self.url}/gradio_api/info")
            response.raise_for_status()
            self._defaults = {endpoint.lstrip("/"): [p.get("parameter_default") for p in info.get("parameters", [])]
                              for endpoint, info in response.json().get("named_endpoints", {}).items()}
        return self._defaults.get(name, [])

    async def call(self, name: str, arguments: list) -> list:
        """The outputs of ``/name`` for ``arguments`` (FileData dicts stand for files; missing trailing inputs
        take their API defaults); raises on an error event."""
        arguments = [await self.upload(a) if isinstance(a, Path) else a for a in arguments]
        arguments += (await self.defaults(name))[len(arguments):]
        response = await self.http.post(f"{self.url}/gradio_api/call/{name}", json={"data": arguments})
        response.raise_for_status()
        event_id = response.json()["event_id"]
        event = data = None
        async with self.http.stream("GET", f"{self.url}/gradio_api/call/{name}/{event_id}") as stream:
            async for line in stream.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    data = json.loads(line[5:])
                    break
        if event != "complete":
            raise RuntimeError(f"/{name} answered {event!r}: {str(data)[:200]}")
        if self.download:
            for url in _file_urls(data):
                (await self.http.get(url)).raise_for_status()
        return data


def _file_urls(value) -> list[str]:
    """Every file URL in a call's outputs (the images a browser would fetch)."""
    if isinstance(value, dict):
        own = [value["url"]] if value.get("url") and value.get("path") else []
        return own + [url for item in value.values() for url in _file_urls(item)]
    if isinstance(value, list):
        return [url for item in value for url in _file_urls(item)]
    return []


async def _phase(client: LeanClient, name: str, argument_sets: list[list], timeout_s: float,
                 server_cpu=None) -> dict:
    """``len(argument_sets)`` calls of ``/name`` submitted at once; latency of each from submit to its last file."""
    latencies: list[float] = []
    errors: list[str] = []

    async def one(arguments: list) -> None:
        submitted = time.perf_counter()
        try:
            await client.call(name, arguments)
        except Exception as error:  # noqa: BLE001 - an error is a result of the load test
            errors.append(f"{type(error).__name__}: {str(error)[:200]}")
            return
        latencies.append(time.perf_counter() - submitted)

    client_cpu = process_cpu_seconds()  # every thread of this process: the load generator
    server_cpu_start = server_cpu() if server_cpu else None
    start = time.perf_counter()
    tasks = [asyncio.ensure_future(one(arguments)) for arguments in argument_sets]
    _, late = await asyncio.wait(tasks, timeout=max(timeout_s, 0.01))
    for task in late:
        task.cancel()
    errors += ["timeout: still running at the deadline"] * len(late)
    wall = time.perf_counter() - start
    client_cpu = process_cpu_seconds() - client_cpu
    server_cpu_used = (server_cpu() - server_cpu_start) if server_cpu_start is not None else None
    return {"calls": len(tasks), "ok": len(latencies), "errors": len(errors),
            "error_examples": sorted(set(errors))[:3], "wall_s": round(wall, 3),
            "client_cpu_s": round(client_cpu, 2), "server_cpu_s": _round(server_cpu_used, 2),
            "p50_s": _round(percentile(latencies, 50)), "p95_s": _round(percentile(latencies, 95)),
            "max_s": _round(max(latencies) if latencies else None),
            "throughput_per_s": _round(len(latencies) / wall if wall > 0 else None, 3)}


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


async def _single_call_seconds(client: LeanClient, name: str, arguments: list, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        await client.call(name, arguments)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def _query_ids(client: LeanClient, count: int) -> list[tuple[str, str]]:
    """``(tid, direction)`` pairs from the public ``/failures`` table of both directions (the app's own queries)."""
    pairs = []
    for direction in (IR2VIS, VIS2IR):
        rows = min(400, max(50, count))  # the Rows slider of the Failure cases tab: 5 to 400
        table = (await client.call("failures", [direction, "ap", rows]))[0]
        pairs += [(row[1], direction) for row in table["data"]]
    if not pairs:
        raise RuntimeError("/failures returned no queries")
    return [pairs[i % len(pairs)] for i in range(count)]


def run_load_test(url: str, retrieve_calls: int = 50, video_calls: int = 10, timeout_s: float = 600.0,
                  top_k: int = 10, warmup_timeout_s: float = 900.0, download: bool = True, log=print,
                  server_cpu=None) -> dict:
    """The load test against ``url`` (see the module docstring); returns the figures.

    ``download``: fetch every returned image, as a browser does (False: leave them on the server, which
    shows the server's own share of the latency). ``server_cpu``: a callable giving the server process's
    CPU seconds so far (when it was launched here), to report its share next to the load generator's.
    """
    return asyncio.run(_run_load_test(url, retrieve_calls, video_calls, timeout_s, top_k, warmup_timeout_s,
                                      download, log, server_cpu))


async def _run_load_test(url, retrieve_calls, video_calls, timeout_s, top_k, warmup_timeout_s, download, log,
                         server_cpu) -> dict:
    client = LeanClient(url, download=download, timeout_s=timeout_s)
    try:
        log(f"[load] warming up {url} (waits for the model) ...")
        start = time.perf_counter()
        while True:
            try:
                pairs = await _query_ids(client, max(retrieve_calls, 1))
                break
            except RuntimeError:  # the handlers wait for the model themselves: an error event is an error
                raise
            except Exception as error:  # noqa: BLE001 - not reachable yet
                if time.perf_counter() - start > warmup_timeout_s:
                    raise RuntimeError(f"the app did not answer /failures within {warmup_timeout_s:g} s: "
                                       f"{error}") from None
                await asyncio.sleep(2)
        result: dict = {"url": url, "machine": machine_info(), "warmup_s": round(time.perf_counter() - start, 2),
                        "top_k": top_k,
                        "downloads": download, "client": "httpx asyncio, Gradio's /gradio_api/call API",
                        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        if hasattr(os, "getloadavg"):
            result["load_1min_start"] = round(os.getloadavg()[0], 2)
        deadline = time.perf_counter() + timeout_s
        with tempfile.TemporaryDirectory(prefix="lsmrl-load-") as tmp:
            video, modality = sample_query_video(Path(tmp) / "query16.mp4")
            tid, direction = pairs[0]
            await client.call("retrieve", [tid, direction, top_k])  # warm caches
            await client.call("retrieve_video", [video, modality, top_k])
            single_retrieve = await _single_call_seconds(client, "retrieve", [tid, direction, top_k], 5)
            single_video = await _single_call_seconds(client, "retrieve_video", [video, modality, top_k], 3)
            log(f"[load] single calls: /retrieve {single_retrieve:.3f} s, /retrieve_video {single_video:.3f} s")
            if retrieve_calls:
                log(f"[load] {retrieve_calls} concurrent /retrieve calls ...")
                figures = await _phase(client, "retrieve", [[t, d, top_k] for t, d in pairs[:retrieve_calls]],
                                       deadline - time.perf_counter(), server_cpu)
                result["retrieve"] = {**figures, "single_s": round(single_retrieve, 4)}
            if video_calls:
                log(f"[load] {video_calls} concurrent /retrieve_video calls ...")
                figures = await _phase(client, "retrieve_video", [[video, modality, top_k]] * video_calls,
                                       deadline - time.perf_counter(), server_cpu)
                result["retrieve_video"] = {**figures, "single_s": round(single_video, 4)}
        if hasattr(os, "getloadavg"):
            result["load_1min_end"] = round(os.getloadavg()[0], 2)
        _ratios(result)
        return result
    finally:
        await client.close()


def _ratios(result: dict) -> None:
    for name in ("retrieve", "retrieve_video"):
        figures = result.get(name)
        if figures and figures["p95_s"] is not None:
            figures["p95_over_single"] = round(figures["p95_s"] / max(figures["single_s"], 1e-9), 2)


# =========================================================================== the two floors and the goal
def handler_costs(app_args=(), repeats: int = 5, top_k: int = 10, log=print, resources=None) -> dict:
    """Server-side cost of one call of each load-tested handler, measured in this process without Gradio:
    ``{"retrieve": {"wall_s", "cpu_s"}, "retrieve_video": {...}}`` (medians over ``repeats`` sequential calls
    after a warm-up; ``cpu_s`` counts every thread, torch's workers included, and the child process that
    decodes an uploaded video).

    The app is opened as ``python app/main.py <app_args>`` would open it (same checkpoint, data and cache) and
    its handlers (:class:`app.callbacks.Callbacks`) are called directly with the load test's inputs.
    ``resources``: an app already open in this process (then ``app_args`` is ignored).
    """
    from app import config as app_config
    from app import resources as app_resources
    from app.callbacks import Callbacks
    from app.main import build_parser, config_from_args
    app_config.configure_environment()
    if resources is None:
        config = config_from_args(build_parser().parse_args(list(app_args)))
        resources = app_resources.Resources(config, precompute=False).start()
    explorer = resources.explorer(timeout=900)
    callbacks = Callbacks(resources)
    query = explorer.queries(IR2VIS)[0]["tid"]
    out = {}
    with tempfile.TemporaryDirectory(prefix="lsmrl-load-cost-") as tmp:
        video, modality = sample_query_video(Path(tmp) / "query16.mp4")
        for name, call in (("retrieve", lambda: callbacks.retrieve(query, IR2VIS, top_k)),
                           ("retrieve_video", lambda: callbacks.retrieve_video(str(video), modality, top_k))):
            timed = time_calls(call, repeats, children=True)  # the decoding child's work is the handler's too
            out[name] = {"wall_s": round(statistics.median(timed["wall_s"]), 4),
                         "cpu_s": round(statistics.median(timed["cpu_s"]), 4), "repeats": repeats}
            log(f"[load] handler cost /{name}: {out[name]['wall_s']:.3f} s wall, {out[name]['cpu_s']:.3f} CPU s")
    return out


def apply_bounds(result: dict, costs: dict | None, cores: int | None = None) -> None:
    """Per endpoint: the two floors no server can beat, and the goal against the larger.

    - ``floor``: the no-op Gradio app's figures in the same run (``p95_s``: what Gradio alone costs for
      that many concurrent calls);
    - ``compute_floor_s``: the handlers' own work, CPU seconds of one call times the calls, over the cores
      (the calls cannot finish sooner even if they shared the cores perfectly);
    - ``bound_s`` = the larger, ``p95_over_bound`` = p95 / bound, ``meets_goal``: no errors and at most
      :data:`GOAL_OVER_BOUND`.
    """
    cores = cores or os.cpu_count() or 1
    floor = result.get("floor") or {}
    for name in ("retrieve", "retrieve_video"):
        figures = result.get(name)
        if not figures:
            continue
        floor_figures = floor.get(name) or {}
        if floor_figures:
            figures["floor"] = {key: floor_figures.get(key) for key in ("p95_s", "p50_s", "errors",
                                                                          "throughput_per_s")}
        cost = (costs or {}).get(name)
        if cost:
            figures["handler_cpu_s"] = cost["cpu_s"]
            figures["handler_wall_s"] = cost["wall_s"]
            figures["compute_floor_s"] = round(figures["calls"] * cost["cpu_s"] / cores, 4)
        candidates = [v for v in (floor_figures.get("p95_s"), figures.get("compute_floor_s")) if v]
        if candidates and figures.get("p95_s") is not None:
            figures["bound_s"] = round(max(candidates), 4)
            figures["p95_over_bound"] = round(figures["p95_s"] / figures["bound_s"], 3)
            figures["meets_goal"] = figures["errors"] == 0 and figures["p95_over_bound"] <= GOAL_OVER_BOUND
    result["cores"] = cores
    result["goal_over_bound"] = GOAL_OVER_BOUND


def format_result(result: dict) -> str:
    lines = ["| app | endpoint | calls | errors | p50 s | p95 s | max s | calls/s | single call s | compute floor s "
             "| bound s | p95 / bound | goal met | CPU s: load generator / server |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for app_name, figures in (("LSMRL Explorer", result), ("no-op floor", result.get("floor") or {})):
        for name in ("retrieve", "retrieve_video"):
            f = figures.get(name)
            if f:
                lines.append(f"| {app_name} | /{name} | {f['calls']} | {f['errors']} | {f['p50_s']} | {f['p95_s']} | "
                             f"{f['max_s']} | {f.get('throughput_per_s')} | {f['single_s']} | "
                             f"{f.get('compute_floor_s')} | {f.get('bound_s')} | {f.get('p95_over_bound')} | "
                             f"{f.get('meets_goal')} | {f.get('client_cpu_s')} / {f.get('server_cpu_s')} |")
                for example in f["error_examples"]:
                    lines.append(f"  error: {example}")
    queue = result.get("queue")
    if queue:
        lines.append(f"queue: max_size={queue.get('max_size')}, default concurrency "
                     f"{queue.get('default_concurrency_limit')}; per event: "
                     + ", ".join(f"/{k}={v['concurrency_limit']}" + (
                         f" (shared as {v['concurrency_id']!r})" if str(v["concurrency_id"]) not in (k, "None")
                         and not str(v["concurrency_id"]).isdigit() else "")
                                 for k, v in sorted(queue.get("events", {}).items())))
        for problem in result.get("queue_problems", []):
            lines.append(f"  queue problem: {problem}")
    return "\n".join(lines)


def merge_into(path: Path, result: dict) -> None:
    """Put ``result`` under ``load_test`` of a ``bench all`` JSON file (created if missing)."""
    data = {}
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except ValueError:
            data = {}
    data["load_test"] = result
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def _soak_main(args: argparse.Namespace) -> int:
    if not 10 <= args.soak <= 6 * 3600 or not 1 <= args.soak_workers <= 32:
        raise SystemExit("--soak takes 10 to 21600 seconds and --soak-workers 1 to 32")
    result = run_soak(args.soak, args.soak_workers, shlex.split(args.app_args), client_factory=LeanClient,
                      query_ids=_query_ids, warmup_s=max(0.0, args.soak_warmup))
    result["machine"] = machine_info()
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=1))
    if args.json:
        path = Path(args.json)
        data = json.loads(path.read_text()) if path.is_file() else {}
        data["soak"] = result
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n")
        print(f"merged into {args.json} (soak)")
    return 0 if result["meets_goal"] else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/loadtest.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=None, help="a running app (default: launch `python app/main.py` here)")
    parser.add_argument("--retrieve", type=int, default=50, help="concurrent /retrieve calls (default 50)")
    parser.add_argument("--retrieve-video", type=int, default=10, help="concurrent /retrieve_video calls (default 10)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds for both phases together")
    parser.add_argument("--port", type=int, default=None, help="port of the launched app (default: a free one)")
    parser.add_argument("--json", default=None, help="merge the figures into this bench JSON (key load_test)")
    parser.add_argument("--no-queue-check", action="store_true", help="do not build the Blocks to read the queue")
    parser.add_argument("--no-download", action="store_true",
                        help="do not fetch the returned images (a browser does; this isolates the server's share)")
    parser.add_argument("--floor", action="store_true",
                        help="also run the same phases against a no-op Gradio app with the same API (the floor "
                             "Gradio sets on this machine)")
    parser.add_argument("--serve-floor", action="store_true", help=argparse.SUPPRESS)  # used by --floor
    parser.add_argument("--no-compute-floor", action="store_true",
                        help="do not time the handlers in this process (the compute floor: their CPU seconds per "
                             "call x calls / cores)")
    parser.add_argument("--app-args", default="",
                        help="extra arguments of the launched `python app/main.py` (one string, e.g. "
                             "\"--checkpoint my.safetensors\")")
    parser.add_argument("--soak", type=float, default=None, metavar="SECONDS",
                        help="instead of the phases: a steady mix of calls for SECONDS, with the server's memory "
                             "and upload folder watched (tools/soak.py); --json gets it under `soak`")
    parser.add_argument("--soak-workers", type=int, default=4, help="calls in flight during the soak (default 4)")
    parser.add_argument("--soak-warmup", type=float, default=60.0,
                        help="seconds of the soak's own load before its memory baseline (default 60)")
    args = parser.parse_args(argv)
    if args.retrieve < 0 or args.retrieve_video < 0 or args.retrieve + args.retrieve_video > 500:
        parser.error("--retrieve and --retrieve-video must be between 0 and 500 in total")

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.serve_floor:
        serve_floor(args.port or 7860)
        return 0
    if args.soak is not None:
        return _soak_main(args)
    launched = None
    url = args.url
    try:
        if url is None:
            launched = LaunchedApp(args.port, timeout_s=300, extra_args=shlex.split(args.app_args))
            url = launched.url
            print(f"[load] launched the app at {url} (first page after {launched.start_s:.1f} s)")
        result = run_load_test(url, args.retrieve, args.retrieve_video, args.timeout, download=not args.no_download,
                               server_cpu=launched.cpu_seconds if launched else None)
    finally:
        if launched is not None:
            launched.close()
    if args.floor:
        with LaunchedApp(timeout_s=120, script="tools/loadtest.py", extra_args=["--serve-floor"]) as floor:
            print(f"[load] the no-op floor app at {floor.url}")
            result["floor"] = run_load_test(floor.url, args.retrieve, args.retrieve_video, args.timeout,
                                            download=not args.no_download, server_cpu=floor.cpu_seconds)
    costs = None
    if not args.no_compute_floor:
        try:  # after the phases, with the servers stopped: the handlers alone on the machine
            costs = handler_costs(shlex.split(args.app_args))
            result["handler_costs"] = costs
        except Exception as error:  # noqa: BLE001 - report it; the timings stand
            result["handler_costs_error"] = f"{type(error).__name__}: {str(error)[:300]}"
    apply_bounds(result, costs)
    if not args.no_queue_check:
        try:
            result["queue"] = queue_settings()
            result["queue_problems"] = queue_problems(result["queue"])
        except Exception as error:  # noqa: BLE001 - report it; the timings stand
            result["queue_problems"] = [f"could not read the queue settings: {type(error).__name__}: {error}"]
    print(format_result(result))
    if args.json:
        merge_into(Path(args.json), result)
        print(f"merged into {args.json} (load_test)")
    failed = any(figures.get(n, {}).get("errors") for figures in (result, result.get("floor") or {})
                 for n in ("retrieve", "retrieve_video"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
