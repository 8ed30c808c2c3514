"""Entry point of LSMRL Explorer: ``python app/main.py [--checkpoint ...]``.

With no arguments it serves the embedded demo (the committed mini LSMRL and
frame-wise CLIP baseline checkpoints on the SynthVVI test split in
``assets/synthvvi``) on http://127.0.0.1:7860, offline. ``GRADIO_SERVER_NAME``
and ``GRADIO_SERVER_PORT`` are respected; ``--host``/``--port`` win over them.

``python app/main.py --build-cache`` rebuilds the shipped cache
(``checkpoints/cache/``) and the example clips (``assets/cache/examples/``)
for the demo checkpoints; see :func:`app.cache_build.build_cache`.

Running a script puts its own folder (``app/``), not the repository root, on
``sys.path``; this file therefore puts the root there itself (and takes
``app/`` off, so that ``app/state.py`` cannot shadow another module named
``state``) before importing ``lsmrl`` or ``app.*``. ``tests/test_entrypoint.py``
guards it.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

_APP_DIR = Path(__file__).resolve().parent
_REPO_ROOT = _APP_DIR.parent
if __name__ == "__main__":
    sys.path[:] = [p for p in sys.path if Path(p or os.getcwd()).resolve() != _APP_DIR]
if str(_REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(_REPO_ROOT))

from app import cache_build as app_cache_build  # noqa: E402  (after the sys.path fix above)
from app import config as app_config  # noqa: E402  (after the sys.path fix above)
from app import resources as app_resources  # noqa: E402  (after the sys.path fix above)
from app.config import DEFAULT_LIMITS
from app.gpu import gpu  # noqa: E402,F401  (before lsmrl's model modules: spaces must precede CUDA)
from lsmrl.errors import LSMRLError  # noqa: E402  (light: proves lsmrl is importable before anything heavy)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
#: Queue: 2 workers on 2 cores (model calls are serialised by the Explorer's lock anyway), 64 waiting at most.
CONCURRENCY = 2
QUEUE_SIZE = 64


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python app/main.py",
        description="LSMRL Explorer: explore cross-modal retrieval, attention, prompt diffusion, the modality gap "
                    "and failure cases of an LSMRL checkpoint (default: the embedded SynthVVI demo).")
    parser.add_argument("--checkpoint", default=None,
                        help=f"LSMRL checkpoint (.safetensors with its .json sidecar); default "
                             f"{app_config.DEFAULT_CHECKPOINT.relative_to(app_config.REPO_ROOT)}")
    parser.add_argument("--compare-checkpoint", default=None,
                        help="a second checkpoint to compare on the same queries (per-query AP changes)")
    parser.add_argument("--baseline-checkpoint", default=None,
                        help="the frame-wise CLIP baseline for the UMAP and comparisons ('none' to skip); default: "
                             "the demo baseline when the demo checkpoint is used")
    parser.add_argument("--dataset", choices=app_config.DATASETS, default=app_config.DEFAULT_DATASET,
                        help="data set layout and protocol (default: synthvvi)")
    parser.add_argument("--data-root", default=None,
                        help="data set folder (default for synthvvi: the embedded test split assets/synthvvi)")
    parser.add_argument("--cache-dir", default=None,
                        help="writable cache of features and analyses (default: $LSMRL_CACHE_DIR or ./cache)")
    parser.add_argument("--num-frames", type=int, default=None, help="test frames per tracklet (default: protocol's)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--host", default=None,
                        help=f"address to listen on (default: $GRADIO_SERVER_NAME or {DEFAULT_HOST}; "
                             "0.0.0.0 for a container)")
    parser.add_argument("--port", type=int, default=None,
                        help=f"port (default: $GRADIO_SERVER_PORT or {DEFAULT_PORT})")
    parser.add_argument("--share", action="store_true", help="create a public gradio.live link (needs internet)")
    parser.add_argument("--build-cache", action="store_true",
                        help="rebuild the shipped cache (checkpoints/cache) and example clips for the given (default: "
                             "demo) checkpoints, then exit")
    return parser


def config_from_args(args: argparse.Namespace) -> app_config.AppConfig:
    return app_config.AppConfig.resolve(checkpoint=args.checkpoint, compare_checkpoint=args.compare_checkpoint,
                                       baseline_checkpoint=args.baseline_checkpoint, dataset=args.dataset,
                                       data_root=args.data_root, cache_dir=args.cache_dir,
                                       num_frames=args.num_frames, device=args.device)


def build_app(resources: app_resources.Resources | None = None, config: app_config.AppConfig | None = None,
              limits=None, start: bool = True):
    """The ``gr.Blocks`` of the app (not launched). ``resources``: an open or loading
    :class:`app.resources.Resources` (default: one for ``config``, loading in the background when ``start``)."""
    app_config.configure_environment()
    # gradio reads its settings at import: after configure_environment()
    from app import gradio_sessions
    from app.ui import build_ui

    gradio_sessions.install()  # a new session (every API call) builds block configs only when it needs them
    if resources is None:
        resources = app_resources.Resources(config or app_config.AppConfig.resolve())
    if start:
        resources.start()
    demo = build_ui(resources, limits or DEFAULT_LIMITS)
    demo.lsmrl_resources = resources
    return demo


def launch_app(demo, host: str | None = None, port: int | None = None, share: bool = False,
               prevent_thread_lock: bool = False, quiet: bool = False, limits=None):
    """Queue and launch ``demo``; returns what ``Blocks.launch`` returns."""
    # gradio reads its settings at import: after configure_environment()
    import gradio as gr

    from app.ui_style import CSS, theme

    limits = limits or DEFAULT_LIMITS
    host = host or os.environ.get("GRADIO_SERVER_NAME") or DEFAULT_HOST
    port = int(port or os.environ.get("GRADIO_SERVER_PORT") or DEFAULT_PORT)
    temp = app_config.app_temp_dir()
    temp.mkdir(parents=True, exist_ok=True)
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    # the server serves only its own folders: the example clips and the rendered strips (not the whole cache)
    strips = app_config.strip_cache_dir()
    strips.mkdir(parents=True, exist_ok=True)
    allowed = ([str(app_config.EXAMPLES_DIR)] if app_config.EXAMPLES_DIR.is_dir() else []) + [str(strips)]
    # the rendered pictures are written once under their content's name and never changed: served from where
    # they are, not hashed and copied into Gradio's cache on every answer
    gr.set_static_paths([str(strips)])
    return demo.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=prevent_thread_lock,
                       quiet=quiet, allowed_paths=allowed, max_file_size=limits.max_file_size,
                       footer_links=["api", "settings"], theme=theme(), css=CSS, show_error=True,
                       state_session_capacity=app_config.SESSION_CAPACITY, ssr_mode=False)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    app_config.configure_environment()
    config = config_from_args(args)
    problems = config.problems()
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.build_cache:
        try:
            summary = app_cache_build.build_cache(config)
        except LSMRLError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        for name, size in summary["files"].items():
            print(f"  {size / 1024:9.1f} KiB  {name}")
        print(f"cache written to {summary['cache_dir']} ({summary['total_bytes'] / 2**20:.1f} MiB); "
              f"examples in {summary['examples_dir']}")
        return 0
    demo = build_app(config=config, start=False)  # the model loads after the page is served (warm_up)
    launch_app(demo, args.host, args.port, args.share, prevent_thread_lock=True)
    threading.Thread(target=warm_up, args=(demo,), name="lsmrl-warm-up", daemon=True).start()
    demo.block_thread()
    return 0


#: The calls :func:`warm_up` makes through the app's own API, in order: the worst queries, then one retrieval.
WARM_UP_DIRECTION = "infrared_to_visible"


def warm_up(demo, timeout_s: float = 600.0) -> bool:
    """Load the model and its caches, then answer one ``/failures`` and one ``/retrieve`` through the app's own
    HTTP API (loopback), so that the first user's click finds everything warm: the model and features, the
    lazily imported figure and rendering modules, the handlers' frame and strip caches, Gradio's queue.

    Runs in a background thread after the first page is served (a user sees the page at once while this
    runs). Returns True when both calls were answered; any failure only ends the warm-up (the handlers
    report errors to users themselves).
    """
    import json

    import httpx

    resources = demo.lsmrl_resources
    resources.start()
    try:
        resources.explorer(timeout=timeout_s)
        # torch: loaded by the explorer's thread before this runs
        from lsmrl.device import get_device, inference_precision

        inference_precision("auto", get_device(resources.config.device))  # measures bf16 once, off the request path
        url = f"http://127.0.0.1:{demo.server_port}/gradio_api/call"
        with httpx.Client(timeout=timeout_s) as client:
            def call(name: str, data: list):
                event_id = client.post(f"{url}/{name}", json={"data": data}).raise_for_status().json()["event_id"]
                event = None
                with client.stream("GET", f"{url}/{name}/{event_id}") as stream:
                    for line in stream.iter_lines():
                        if line.startswith("event:"):
                            event = line[6:].strip()
                        elif line.startswith("data:") and event in ("complete", "error"):
                            if event == "error":
                                raise RuntimeError(f"/{name}: {line[5:][:200]}")
                            return json.loads(line[5:])
                raise RuntimeError(f"/{name}: the stream ended without an answer")

            table = call("failures", [WARM_UP_DIRECTION, "ap", 5])[0]
            call("retrieve", [table["data"][0][1], WARM_UP_DIRECTION, 10])
        return True
    except Exception as error:  # noqa: BLE001 - a warm-up never stops the app
        print(f"warm-up skipped: {type(error).__name__}: {str(error)[:200]}", file=sys.stderr, flush=True)
        return False


if __name__ == "__main__":
    sys.exit(main())
