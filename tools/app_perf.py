"""``python tools/app_perf.py --json OUT``: the app's own start-up and upload figures, driven over HTTP.

``python tools/bench.py all`` runs this file in a subprocess (the library never imports the app or
gradio) and merges its JSON: app start to first page (two launches: the first may fill caches), to the
first answered call, a UMAP view, and an uploaded 16-frame video end to end (gradio_client ``/retrieve_video``).
``LaunchedApp`` and ``sample_query_video`` also serve ``tools/loadtest.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make `lsmrl` importable
    sys.path.insert(0, str(REPO))

DEFAULT_DATA = REPO / "assets" / "synthvvi"

import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

from lsmrl.data.video_write import write_video
from tools.timing import percentile  # noqa: E402  (after the sys.path fix above)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, deadline: float, process=None) -> bool:
    while time.perf_counter() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.1)
    return False


class LaunchedApp:
    """``python app/main.py --port P`` (or another ``script`` of the repo) in a subprocess (its own process
    group); a context manager.

    ``start_s`` is the time from launch to the first 200 of ``/``. Output goes to
    ``log`` (a temporary file unless given).
    """

    def __init__(self, port: int | None = None, timeout_s: float = 180.0, extra_args=(), env=None, log=None,
                 script: str = "app/main.py"):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = Path(log) if log else Path(tempfile.mkstemp(prefix="lsmrl-app-", suffix=".log")[1])
        environment = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
                       **(env or {})}
        environment.pop("GRADIO_SERVER_PORT", None)
        self._log = open(self.log_path, "wb")
        start = self.launched_at = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / script), "--port", str(self.port), *extra_args],
            cwd=str(REPO), env=environment, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=(os.name == "posix"))
        ok = _wait_http(self.url, start + timeout_s, self.process)
        self.start_s = time.perf_counter() - start
        if not ok:
            tail = self.log_tail()
            self.close()
            raise RuntimeError(f"the app did not serve {self.url} within {timeout_s:g} s: {tail}")

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) the server process has used so far; None where /proc is absent."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 15) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return ""

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                if os.name == "posix":
                    os.killpg(self.process.pid, signal.SIGTERM)
                else:  # pragma: no cover
                    self.process.terminate()
                self.process.wait(timeout=15)
            except Exception:  # noqa: BLE001 - then kill it
                try:
                    os.killpg(self.process.pid, signal.SIGKILL) if os.name == "posix" else self.process.kill()
                except ProcessLookupError:
                    pass
                self.process.wait(timeout=15)
        self._log.close()

    def __enter__(self) -> "LaunchedApp":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def sample_query_video(path: Path, num_frames: int = 16, data_root: Path = DEFAULT_DATA) -> tuple[Path, str]:
    """A ``num_frames``-frame mp4 of one embedded infrared test tracklet (frames repeated in order).

    Returns ``(path, modality)``.
    """
    import numpy as np
    from PIL import Image

    folders = sorted(p for p in (data_root / "Test").glob("*/ir/*") if p.is_dir())
    modality = "infrared"
    if not folders:
        raise RuntimeError(f"no infrared tracklet folders under {data_root / 'Test'}")
    images = sorted(folders[0].glob("*.jpg"), key=lambda p: int(p.stem) if p.stem.isdigit() else p.stem)
    frames = [np.asarray(Image.open(images[i % len(images)]).convert("RGB")) for i in range(num_frames)]
    return write_video(np.stack(frames), path), modality


def video_query_timing(url: str, video: Path, modality: str, repeats: int = 3, top_k: int = 10) -> dict:
    """End-to-end seconds of ``/retrieve_video`` through gradio_client (upload, decode, embed, rank, reply)."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        client.predict(handle_file(str(video)), modality, top_k, api_name="/retrieve_video")
        times.append(time.perf_counter() - start)
    return {"video_query_s": round(percentile(times, 50), 3), "video_query_first_s": round(times[0], 3),
            "video_query_max_s": round(max(times), 3), "video_query_frames": 16}


def wait_until_ready(url: str, launched_at: float, timeout_s: float = 600.0) -> float:
    """Seconds from ``launched_at`` until the app answers a model-backed call (``/failures``)."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(url, verbose=False)
    deadline = launched_at + timeout_s
    while True:
        try:  # the handler itself waits for the model, so an AppError is a real error
            client.predict("infrared_to_visible", "ap", 5, api_name="/failures")  # its slider starts at 5
            return time.perf_counter() - launched_at
        except AppError as error:
            raise RuntimeError(f"the app answered /failures with an error: {error}") from None
        except Exception:  # noqa: BLE001 - not reachable yet
            if time.perf_counter() > deadline:
                raise
            time.sleep(0.25)


def umap_view_seconds(url: str, stage: str = "stfl") -> float:
    """Seconds of one ``/modality_gap`` call (the stage's UMAP figure and the gap table) through gradio_client."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    start = time.perf_counter()
    client.predict(stage, "", "infrared_to_visible", 5, api_name="/modality_gap")
    return time.perf_counter() - start


def app_timings(port: int | None = None, video_repeats: int = 3, app_args=()) -> dict:
    """App start to first page (two launches: the first may fill caches), to the first answered call, and
    the uploaded-video query. ``app_args``: extra ``app/main.py`` arguments (e.g. ``--checkpoint``)."""
    out: dict = {"notes": {}}
    if not (REPO / "app" / "main.py").is_file():
        for key in ("app_start_s", "app_start_first_s", "video_query_s"):
            out[key] = None
        out["notes"]["app"] = "skipped: app/main.py does not exist yet"
        return out
    with LaunchedApp(port, extra_args=app_args) as first:
        out["app_start_first_s"] = round(first.start_s, 2)
        out["app_ready_first_s"] = round(wait_until_ready(first.url, first.launched_at), 2)
        # the first UMAP view waits for the background precomputation (and fills the cache if it was cold)
        out["app_first_umap_view_s"] = round(umap_view_seconds(first.url), 2)
    with LaunchedApp(port, extra_args=app_args) as app:
        out["app_start_s"] = round(app.start_s, 2)
        out["app_ready_s"] = round(wait_until_ready(app.url, app.launched_at), 2)
        umap_view_seconds(app.url)  # the analysis is loaded (from the cache): nothing runs in the background
        out["app_umap_view_s"] = round(umap_view_seconds(app.url, "cmi"), 3)
        if app_args:  # file arguments by their last two path parts (no machine-specific folders in the README)
            shown = ["/".join(Path(a).parts[-2:]) if os.sep in a and Path(a).exists() else a for a in app_args]
            out["notes"]["app_args"] = "launched as `python app/main.py " + " ".join(shown) + "`"
        try:
            with tempfile.TemporaryDirectory(prefix="lsmrl-bench-video-") as tmp:
                video, modality = sample_query_video(Path(tmp) / "query16.mp4")
                out.update(video_query_timing(app.url, video, modality, video_repeats))
        except Exception as error:  # noqa: BLE001 - report, keep the other figures
            out["video_query_s"] = None
            out["notes"]["video_query"] = f"skipped: {type(error).__name__}: {str(error)[:300]}"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/app_perf.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", required=True, help="output JSON (app_start_s, video_query_s, ...)")
    parser.add_argument("--port", type=int, default=None, help="port of the launched app (default: a free one)")
    parser.add_argument("--app-args", default="", help="extra `python app/main.py` arguments, as one string")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    result = app_timings(args.port, app_args=tuple(shlex.split(args.app_args)))
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "notes"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
