"""Load test of a running LSMRL Explorer: concurrent ``/retrieve`` and ``/retrieve_video`` calls over loopback.

``python app/loadtest.py [--url http://127.0.0.1:7860/] [--retrieve 50] [--retrieve-video 10] [--json perf.json]``

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
   the single-call baseline and p95 / single (goal: 0 errors and at most 5x).

The queue settings the app launches with (concurrency limits, bounded size)
are read by building the app's Blocks in this process without serving it
(:func:`queue_settings`). ``--json`` merges the figures into a ``bench all``
JSON file under ``load_test`` (``python -m lsmrl bench report`` shows them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__":  # `python app/loadtest.py` puts app/, not the root, on sys.path
    _APP_DIR = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or os.getcwd()).resolve() != _APP_DIR]
if str(_REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(_REPO_ROOT))

IR2VIS = "infrared_to_visible"
VIS2IR = "visible_to_infrared"
GOAL_RATIO = 5.0


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


# =========================================================================== queue settings
def queue_settings() -> dict:
    """The queue the app launches with: default concurrency, max size, and per public event its limit.

    Builds the Blocks exactly as ``app/main.py`` does (no model is loaded) and
    runs :func:`app.main.launch_app` with ``launch`` replaced by a stub, so
    ``demo.queue(...)`` is the app's own call.
    """
    from app import state as app_state

    app_state.configure_environment()
    from app.main import build_app, launch_app

    demo = build_app(app_state.Resources(app_state.AppConfig.resolve()), start=False)
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


# =========================================================================== calls
class Phase:
    """``count`` calls of one endpoint submitted at once; latency of each from submit to result."""

    def __init__(self, client, name: str, argument_sets: list[tuple], deadline: float):
        self.client = client
        self.name = name
        self.argument_sets = argument_sets
        self.deadline = deadline
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def run(self) -> dict:
        jobs = []
        start = time.perf_counter()
        for arguments in self.argument_sets:
            submitted = time.perf_counter()
            job = self.client.submit(*arguments, api_name=f"/{self.name}")
            # a gradio_client Job wraps the future of the call: callbacks and done() are the inner future's
            job.future.add_done_callback(lambda future, t0=submitted: self._done(future, t0))
            jobs.append(job)
        for job in jobs:
            remaining = self.deadline - time.perf_counter()
            try:
                job.result(timeout=max(remaining, 0.01))
            except Exception:  # noqa: BLE001 - recorded by the callback, or a timeout below
                pass
        late = [job for job in jobs if not job.future.done()]
        for job in late:
            job.cancel()
        # done-callbacks run in the thread that finished the call, possibly after result() returned here
        settle = time.perf_counter() + 5.0
        while time.perf_counter() < settle:
            with self._lock:
                if len(self.latencies) + len(self.errors) >= len(jobs) - len(late):
                    break
            time.sleep(0.01)
        with self._lock:
            self.errors += ["timeout: still running at the deadline"] * len(late)
        wall = time.perf_counter() - start
        return {"calls": len(jobs), "ok": len(self.latencies), "errors": len(self.errors),
                "error_examples": sorted(set(self.errors))[:3], "wall_s": round(wall, 3),
                "p50_s": _round(_percentile(self.latencies, 50)), "p95_s": _round(_percentile(self.latencies, 95)),
                "max_s": _round(max(self.latencies) if self.latencies else None)}

    def _done(self, future, submitted: float) -> None:
        elapsed = time.perf_counter() - submitted
        if future.cancelled():  # counted as a timeout by run()
            return
        with self._lock:
            try:
                future.result(timeout=0)
            except Exception as error:  # noqa: BLE001 - an error is a result of the load test
                self.errors.append(f"{type(error).__name__}: {str(error)[:200]}")
                return
            self.latencies.append(elapsed)


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def single_call_seconds(client, name: str, arguments: tuple, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        client.predict(*arguments, api_name=f"/{name}")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def query_ids(client, count: int) -> list[tuple[str, str]]:
    """``(tid, direction)`` pairs from the public ``/failures`` table of both directions (the app's own queries)."""
    pairs = []
    for direction in (IR2VIS, VIS2IR):
        rows = min(400, max(50, count))  # the Rows slider of the Failure cases tab: 5 to 400
        table = client.predict(direction, "ap", rows, api_name="/failures")[0]
        pairs += [(row[1], direction) for row in table["data"]]
    if not pairs:
        raise RuntimeError("/failures returned no queries")
    return [pairs[i % len(pairs)] for i in range(count)]


def run_load_test(url: str, retrieve_calls: int = 50, video_calls: int = 10, timeout_s: float = 600.0,
                  top_k: int = 10, warmup_timeout_s: float = 900.0, download: bool = True, log=print) -> dict:
    """The load test against ``url`` (see the module docstring); returns the figures.

    ``download``: fetch every returned image, as a browser does (False: leave them on the server, which
    shows the server's own share of the latency).
    """
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    from app.perf import sample_query_video

    options = {} if download else {"download_files": False}
    client = Client(url, verbose=False, max_workers=max(retrieve_calls, video_calls) + 4, **options)
    log(f"[load] warming up {url} (waits for the model) ...")
    start = time.perf_counter()
    while True:
        try:
            pairs = query_ids(client, max(retrieve_calls, 1))
            break
        except AppError:  # the handlers wait for the model themselves: an error is an error
            raise
        except Exception as error:  # noqa: BLE001 - not reachable yet
            if time.perf_counter() - start > warmup_timeout_s:
                raise RuntimeError(f"the app did not answer /failures within {warmup_timeout_s:g} s: {error}") from None
            time.sleep(2)
    result: dict = {"url": url, "warmup_s": round(time.perf_counter() - start, 2), "top_k": top_k,
                    "downloads": download,
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if hasattr(os, "getloadavg"):
        result["load_1min_start"] = round(os.getloadavg()[0], 2)
    deadline = time.perf_counter() + timeout_s
    with tempfile.TemporaryDirectory(prefix="lsmrl-load-") as tmp:
        video, modality = sample_query_video(Path(tmp) / "query16.mp4")
        tid, direction = pairs[0]
        client.predict(tid, direction, top_k, api_name="/retrieve")  # warm caches
        client.predict(handle_file(str(video)), modality, top_k, api_name="/retrieve_video")
        single_retrieve = single_call_seconds(client, "retrieve", (tid, direction, top_k), 5)
        single_video = single_call_seconds(client, "retrieve_video", (handle_file(str(video)), modality, top_k), 3)
        log(f"[load] single calls: /retrieve {single_retrieve:.3f} s, /retrieve_video {single_video:.3f} s")

        if retrieve_calls:
            log(f"[load] {retrieve_calls} concurrent /retrieve calls ...")
            phase = Phase(client, "retrieve", [(t, d, top_k) for t, d in pairs[:retrieve_calls]], deadline)
            result["retrieve"] = {**phase.run(), "single_s": round(single_retrieve, 4)}
        if video_calls:
            log(f"[load] {video_calls} concurrent /retrieve_video calls ...")
            phase = Phase(client, "retrieve_video", [(handle_file(str(video)), modality, top_k)] * video_calls,
                          deadline)
            result["retrieve_video"] = {**phase.run(), "single_s": round(single_video, 4)}
    if hasattr(os, "getloadavg"):
        result["load_1min_end"] = round(os.getloadavg()[0], 2)
    for name in ("retrieve", "retrieve_video"):
        figures = result.get(name)
        if figures and figures["p95_s"] is not None:
            figures["p95_over_single"] = round(figures["p95_s"] / max(figures["single_s"], 1e-9), 2)
            figures["meets_goal"] = figures["errors"] == 0 and figures["p95_over_single"] <= GOAL_RATIO
    try:
        client.close()
    except Exception:  # noqa: BLE001 - older clients have no close()
        pass
    return result


def format_result(result: dict) -> str:
    lines = ["| endpoint | calls | errors | p50 s | p95 s | max s | single call s | p95 / single | goal met |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in ("retrieve", "retrieve_video"):
        f = result.get(name)
        if f:
            lines.append(f"| /{name} | {f['calls']} | {f['errors']} | {f['p50_s']} | {f['p95_s']} | {f['max_s']} | "
                         f"{f['single_s']} | {f.get('p95_over_single')} | {f.get('meets_goal')} |")
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python app/loadtest.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=None, help="a running app (default: launch `python app/main.py` here)")
    parser.add_argument("--retrieve", type=int, default=50, help="concurrent /retrieve calls (default 50)")
    parser.add_argument("--retrieve-video", type=int, default=10, help="concurrent /retrieve_video calls (default 10)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds for both phases together")
    parser.add_argument("--port", type=int, default=None, help="port of the launched app (default: a free one)")
    parser.add_argument("--json", default=None, help="merge the figures into this bench JSON (key load_test)")
    parser.add_argument("--no-queue-check", action="store_true", help="do not build the Blocks to read the queue")
    parser.add_argument("--no-download", action="store_true",
                        help="do not fetch the returned images (a browser does; this isolates the server's share)")
    parser.add_argument("--app-args", default="",
                        help="extra arguments of the launched `python app/main.py` (one string, e.g. "
                             "\"--checkpoint my.safetensors\")")
    args = parser.parse_args(argv)
    if args.retrieve < 0 or args.retrieve_video < 0 or args.retrieve + args.retrieve_video > 500:
        parser.error("--retrieve and --retrieve-video must be between 0 and 500 in total")

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    launched = None
    url = args.url
    try:
        if url is None:
            import shlex

            from app.perf import LaunchedApp

            launched = LaunchedApp(args.port, timeout_s=300, extra_args=shlex.split(args.app_args))
            url = launched.url
            print(f"[load] launched the app at {url} (first page after {launched.start_s:.1f} s)")
        result = run_load_test(url, args.retrieve, args.retrieve_video, args.timeout, download=not args.no_download)
    finally:
        if launched is not None:
            launched.close()
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
    failed = any(result.get(n, {}).get("errors") for n in ("retrieve", "retrieve_video"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
