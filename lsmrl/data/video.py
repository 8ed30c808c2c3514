"""Reading video tracklets safely: the only module that imports decord.

decord (0.6.0) can deadlock in native code while holding the GIL when a
container over-reports its frame count (dmlc/decord #373), can blow up memory
on large inputs (#197, #208) and fails on some files that play elsewhere
(#124). A signal or a thread cannot stop a deadlock that holds the GIL, so
**decoding never happens in the calling process**:

1. the parent checks what it can without decoding: the file exists, has a
   supported extension (mp4, avi, mkv, webm), is not empty and is under
   ``limits.max_bytes``;
2. a child process (``python <this file>``, run as a plain script so it does not
   import the ``lsmrl`` package, torch or the caller's ``__main__``) reads the
   container header with imageio-ffmpeg's ffmpeg, refuses resolutions over
   ``limits.max_pixels``, opens the video with decord, at reduced size when its
   long side exceeds ``limits.decode_max_side``, checks the frame count (at
   least 2, at most ``limits.max_frames``), samples the frame indices with
   :func:`lsmrl.data.frame_indices.sample_frame_indices` and decodes them;
3. the parent waits at most ``limits.timeout_s`` seconds (wall clock) and then
   kills the child's whole process group.

Every failure is a :class:`~lsmrl.errors.VideoError` with a message meant for the
user. :func:`write_video` writes an H.264 mp4 with imageio-ffmpeg (tests, examples).

Browsers play only some of the files this module reads (H.264 in mp4, VP8/VP9/AV1
in webm; not MPEG-4 Part 2 in AVI, say): :func:`browser_playable` tells which, and
:func:`write_h264_copy` writes an H.264 mp4 copy for display, with ffmpeg in a child
process under the same timeout; the frames a query uses are still read from the
original file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

_POSIX = os.name == "posix"
SUPPORTED_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm")
_REENCODE_HINT = "re-encode it as H.264 mp4 (e.g. `ffmpeg -i in.mov -c:v libx264 -pix_fmt yuv420p out.mp4`)"


@dataclass(frozen=True)
class VideoLimits:
    """Caps for one video. Exceeding any of them raises :class:`~lsmrl.errors.VideoError`.

    ``decode_max_side`` is not a refusal: larger videos are decoded at reduced
    size (aspect kept) so that memory stays bounded. ``max_decoded_bytes`` caps
    the decoded frames (it matters for ``mode="all"`` on long videos).
    """

    max_bytes: int = 50 * 1024 * 1024
    max_frames: int = 2000
    max_pixels: int = 1920 * 1080
    timeout_s: float = 20.0
    decode_max_side: int = 640
    max_decoded_bytes: int = 512 * 1024 * 1024
    decode_threads: int = 1


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` found (``num_frames`` as the container reports it)."""

    path: str
    num_frames: int
    width: int
    height: int
    fps: float
    duration_s: float
    codec: str
    size_bytes: int
    pix_fmt: str = ""  # as ffmpeg names it, e.g. "yuv420p"


# =========================================================================== parent side
def _video_error(message: str, kind: str = "", detail: str = "") -> Exception:
    """A :class:`~lsmrl.errors.VideoError` with the child's verdict: ``kind`` ("resolution", "too_long", ...)
    and ``detail`` (the size or the frame count), so that a caller can word a limit its own way."""
    from lsmrl.errors import VideoError  # not at the top: the decoding child runs this file without lsmrl

    error = VideoError(message)
    error.kind, error.detail = kind, detail
    return error


def _mb(num_bytes: float) -> str:
    return f"{num_bytes / (1024 * 1024):.1f} MB"


def _check_file(path: str | os.PathLike, limits: VideoLimits) -> tuple[Path, int]:
    p = Path(path)
    if not p.exists():
        raise _video_error(f"video file not found: {p}")
    if p.is_dir():
        raise _video_error(f"{p} is a folder, not a video file (frame folders are read as image sequences)")
    if p.suffix.lower() not in SUPPORTED_EXTENSIONS:
        raise _video_error(
            f"{p.name}: unsupported video extension {p.suffix or '(none)'!r}; "
            f"supported: {', '.join(e[1:] for e in SUPPORTED_EXTENSIONS)}. If it is a video, {_REENCODE_HINT}."
        )
    size = p.stat().st_size
    if size == 0:
        raise _video_error(f"video file {p} is empty (0 bytes)")
    if size > limits.max_bytes:
        raise _video_error(
            f"video file {p.name} is {_mb(size)}, over the limit of {_mb(limits.max_bytes)}; "
            "trim or downscale it first"
        )
    return p, size


def _run_child(request: dict, timeout_s: float) -> dict:
    """Run this file as a script with ``request`` on stdin; return its JSON reply."""
    # -P (Python >= 3.11): do not put this folder on the child's sys.path
    command = [sys.executable, *(["-P"] if sys.version_info >= (3, 11) else []), os.path.abspath(__file__), "--worker"]
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=_POSIX,  # its own process group: the timeout kills ffmpeg grandchildren too
        # keep the user site: Docker Spaces install packages as uid 1000 into ~/.local
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        stdout, stderr = process.communicate(json.dumps(request).encode(), timeout=timeout_s)
    except subprocess.TimeoutExpired:
        try:
            if _POSIX:
                os.killpg(process.pid, signal.SIGKILL)
            else:  # pragma: no cover
                process.kill()
        except (ProcessLookupError, PermissionError):  # pragma: no cover - already gone
            process.kill()
        process.communicate()
        raise _video_error(
            f"decoding took longer than {timeout_s:g} s and was stopped ({Path(request['path']).name}); "
            f"the file may be damaged or over-report its length: {_REENCODE_HINT}"
        ) from None
    lines = [line for line in stdout.decode(errors="replace").splitlines() if line.startswith("{")]
    if not lines:
        tail = stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise _video_error(
            f"the video decoder crashed (exit code {process.returncode}) on {Path(request['path']).name}; "
            f"{_REENCODE_HINT}" + (f" [decoder said: {' | '.join(tail)}]" if tail else "")
        )
    return json.loads(lines[-1])


def _raise_for(reply: dict, path: Path, limits: VideoLimits) -> None:
    kind, detail = reply.get("kind", ""), reply.get("detail", "")
    name = path.name
    if kind == "not_a_video":
        message = f"{name} could not be decoded as a video ({detail}); {_REENCODE_HINT}"
    elif kind == "resolution":
        message = (
            f"{name} is {detail}, over the resolution cap of {limits.max_pixels:,} pixels "
            f"(about 1920x1080); downscale it first"
        )
    elif kind == "no_frames":
        message = f"{name} contains no decodable frames; {_REENCODE_HINT}"
    elif kind == "too_few":
        message = f"{name} has only {detail} frame(s): a tracklet needs at least 2 frames"
    elif kind == "too_long":
        message = (
            f"{name} has {detail} frames, over the limit of {limits.max_frames} frames; "
            "trim it to the part that shows the person"
        )
    elif kind == "too_much":
        frames, needed = detail.split("|")
        message = (
            f"decoding {frames} of {name} needs {_mb(int(needed))}, over the limit of "
            f"{_mb(limits.max_decoded_bytes)}; sample fewer frames"
        )
    elif kind == "decode_failed":
        message = f"frames of {name} could not be decoded ({detail}); {_REENCODE_HINT}"
    else:
        message = f"{name} could not be read ({kind}: {detail}); {_REENCODE_HINT}"
    raise _video_error(message, kind, detail)


def probe_video(path: str | os.PathLike, limits: VideoLimits | None = None) -> VideoInfo:
    """Frame count, size, fps, duration and codec of a video, read in a child process.

    Checks existence, extension, emptiness and the byte cap; it does not apply
    the frame or resolution caps (:func:`read_video_frames` does).
    """
    limits = limits or VideoLimits()
    p, size = _check_file(path, limits)
    reply = _run_child({"path": str(p), "probe_only": True, "limits": asdict(limits)}, limits.timeout_s)
    if not reply.get("ok"):
        _raise_for(reply, p, limits)
    return _video_info(reply["info"], p, size)


def _video_info(info: dict, path: Path, size: int) -> VideoInfo:
    return VideoInfo(path=str(path), num_frames=int(info["num_frames"]), width=int(info["width"]),
                     height=int(info["height"]), fps=float(info["fps"]), duration_s=float(info["duration_s"]),
                     codec=str(info["codec"]), size_bytes=size, pix_fmt=str(info.get("pix_fmt", "")))


def read_video_frames(
    path: str | os.PathLike,
    num_samples: int | None,
    mode: str = "evenly",
    limits: VideoLimits | None = None,
    rng: np.random.Generator | None = None,
    *,
    _child_sleep_s: float = 0.0,
) -> np.ndarray:
    """``num_samples`` frames of a video as a ``(T, H, W, 3)`` uint8 RGB array.

    Frames are chosen by :func:`lsmrl.data.frame_indices.sample_frame_indices` with
    ``mode`` (random modes draw a seed from ``rng``) and decoded in a child
    process under ``limits`` (default :class:`VideoLimits`). ``_child_sleep_s``
    is a test hook that makes the child sleep before decoding.
    """
    return read_video(path, num_samples, mode, limits, rng, _child_sleep_s=_child_sleep_s)[0]


def read_video(
    path: str | os.PathLike,
    num_samples: int | None,
    mode: str = "evenly",
    limits: VideoLimits | None = None,
    rng: np.random.Generator | None = None,
    *,
    at_most: bool = False,
    _child_sleep_s: float = 0.0,
) -> tuple[np.ndarray, VideoInfo]:
    """:func:`read_video_frames` and the video's :class:`VideoInfo`, from one child process (a probe and a
    decode would start two). ``at_most``: a video shorter than ``num_samples`` gives each of its frames once
    instead of repeating them (what a scan for people wants)."""
    from lsmrl.data.frame_indices import SAMPLING_MODES  # not at the top: see _video_error

    if mode not in SAMPLING_MODES:
        raise ValueError(f"unknown sampling mode {mode!r}; expected one of {SAMPLING_MODES}")
    if mode == "restricted_random" and rng is None:
        raise ValueError("sampling mode 'restricted_random' needs an rng (numpy.random.Generator)")
    limits = limits or VideoLimits()
    p, size = _check_file(path, limits)
    seed = int(rng.integers(0, 2**63 - 1)) if rng is not None else None
    with tempfile.TemporaryDirectory(prefix="lsmrl-video-") as tmp:
        out = os.path.join(tmp, "frames.npy")
        request = {
            "path": str(p),
            "probe_only": False,
            "num_samples": int(num_samples) if num_samples is not None else 0,  # ignored by mode "all"
            "mode": mode,
            "seed": seed,
            "limits": asdict(limits),
            "out": out,
            "sleep_s": float(_child_sleep_s),
            "at_most": bool(at_most),
        }
        reply = _run_child(request, limits.timeout_s)
        if not reply.get("ok"):
            _raise_for(reply, p, limits)
        frames = np.load(out)
    return frames, _video_info(reply["info"], p, size)


# =========================================================================== child side
def _load_frame_indices_module():
    """``frame_indices.py`` loaded by path, so the child never imports the ``lsmrl`` package (or torch)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_lsmrl_frame_indices_child", os.path.join(os.path.dirname(os.path.abspath(__file__)), "frame_indices.py")
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up in sys.modules
    spec.loader.exec_module(module)
    return module


def _child_header(path: str) -> dict:
    """Size, fps, duration and codec from the container header (ffmpeg via imageio-ffmpeg)."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(path)
    try:
        meta = next(reader)
    finally:
        reader.close()
    width, height = (int(v) for v in meta.get("size") or meta.get("source_size"))
    return {
        "width": width,
        "height": height,
        "fps": float(meta.get("fps") or 0.0),
        "duration_s": float(meta.get("duration") or 0.0),
        "codec": str(meta.get("codec") or ""),
        "pix_fmt": str(meta.get("pix_fmt") or ""),
    }


def _reduced_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Decode size for a video whose long side exceeds ``max_side`` ((-1, -1) = native size).

    The width is a multiple of 32: decord 0.6.0 returns corrupt buffers for some
    other output widths (e.g. 16, 24, 48; checked on this stack).
    """
    if max(width, height) <= max_side:
        return -1, -1
    scale = max_side / max(width, height)
    decode_w = max(32, int(round(width * scale / 32)) * 32)
    decode_h = max(2, int(round(height * decode_w / width / 2)) * 2)
    return decode_w, decode_h


def _resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(f).resize((width, height), Image.BILINEAR)) for f in frames])


def _child_main(request: dict) -> dict:
    limits = request["limits"]
    path = request["path"]
    try:
        header = _child_header(path)
    except Exception as error:  # noqa: BLE001 - any failure to parse the header means "not a video"
        return {"ok": False, "kind": "not_a_video", "detail": str(error).strip().splitlines()[0][:200]}
    width, height = header["width"], header["height"]
    if width <= 0 or height <= 0:
        return {"ok": False, "kind": "not_a_video", "detail": "no video stream"}
    if not request.get("probe_only") and width * height > limits["max_pixels"]:
        return {"ok": False, "kind": "resolution", "detail": f"{width}x{height}"}

    decode_w, decode_h = _reduced_size(width, height, limits["decode_max_side"])

    import decord  # the only place decord is imported: inside this child

    def open_reader(w: int, h: int):
        return decord.VideoReader(path, ctx=decord.cpu(0), width=w, height=h, num_threads=limits["decode_threads"])

    try:
        reader = open_reader(decode_w, decode_h)
    except AssertionError:  # decord asserts "Invalid frame count: 0"
        return {"ok": False, "kind": "no_frames", "detail": "0 frames"}
    except Exception as error:  # noqa: BLE001 - decord raises DECORDError/RuntimeError
        return {"ok": False, "kind": "not_a_video", "detail": str(error).strip().splitlines()[0][:200]}
    num_frames = len(reader)
    info = {**header, "num_frames": num_frames}
    if request.get("probe_only"):
        return {"ok": True, "info": info}
    if num_frames < 1:
        return {"ok": False, "kind": "no_frames", "detail": "0 frames"}
    if num_frames < 2:
        return {"ok": False, "kind": "too_few", "detail": str(num_frames)}
    if num_frames > limits["max_frames"]:
        return {"ok": False, "kind": "too_long", "detail": str(num_frames)}

    if request.get("sleep_s"):
        time.sleep(float(request["sleep_s"]))

    frame_indices = _load_frame_indices_module()
    rng = np.random.default_rng(request["seed"]) if request.get("seed") is not None else None
    wanted = min(request["num_samples"], num_frames) if request.get("at_most") else request["num_samples"]
    indices = frame_indices.sample_frame_indices(num_frames, wanted, request["mode"], rng)
    unique, inverse = np.unique(indices, return_inverse=True)
    expected = (len(unique), height if decode_h < 0 else decode_h, width if decode_w < 0 else decode_w, 3)
    needed = len(indices) * expected[1] * expected[2] * 3
    if needed > limits["max_decoded_bytes"]:
        return {"ok": False, "kind": "too_much", "detail": f"{len(indices)} frames at {expected[2]}x{expected[1]}|{needed}"}
    try:
        batch = reader.get_batch(unique.tolist()).asnumpy()
        if decode_w > 0 and batch.shape != expected:
            raise ValueError(f"decord returned {batch.shape} instead of {expected}")
    except Exception as error:  # noqa: BLE001
        if decode_w < 0:
            return {"ok": False, "kind": "decode_failed", "detail": str(error).strip().splitlines()[0][:200]}
        # decord's own resizing fails for some output widths: decode at native size, resize here
        try:
            del reader
            reader = open_reader(-1, -1)
            batch = _resize_frames(reader.get_batch(unique.tolist()).asnumpy(), expected[1], expected[2])
        except Exception as error2:  # noqa: BLE001
            return {"ok": False, "kind": "decode_failed", "detail": str(error2).strip().splitlines()[0][:200]}
    if batch.shape[0] == 0:
        return {"ok": False, "kind": "no_frames", "detail": "0 frames decoded"}
    frames = np.ascontiguousarray(batch[inverse], dtype=np.uint8)
    del reader
    np.save(request["out"], frames)
    heavy = [name for name in ("torch", "lsmrl", "PIL") if name in sys.modules]
    return {"ok": True, "info": info, "indices": indices.tolist(), "shape": list(frames.shape), "heavy_modules": heavy}


def _worker() -> int:
    request = json.loads(sys.stdin.read())
    try:
        reply = _child_main(request)
    except Exception as error:  # noqa: BLE001 - report, never print a traceback to the user
        reply = {"ok": False, "kind": type(error).__name__, "detail": str(error)[:300]}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    # Running as a script puts this folder first on sys.path; drop it so that
    # names here (video, sampling, datasets, ...) never shadow real modules.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    sys.exit(_worker())
