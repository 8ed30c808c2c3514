"""Writing videos: an H.264 mp4 from frames, and a browser-playable copy of an upload the browser cannot play.

Both run ffmpeg from ``imageio-ffmpeg`` (a static binary in the wheel); a copy is
made in ffmpeg's own process group under the upload's timeout and written under a
temporary name, then renamed, so a half-written file is never served.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from lsmrl.data.video import VideoInfo, VideoLimits, probe_video
from lsmrl.errors import VideoError

_POSIX = os.name == "posix"


#: What Chromium, Firefox and Safari all play: container suffix -> codecs (ffmpeg's names).
BROWSER_CODECS = {".mp4": ("h264",), ".m4v": ("h264",), ".webm": ("vp8", "vp9", "av1")}


def browser_playable(info: VideoInfo) -> bool:
    """Whether a browser's video player shows ``info``'s file as it is: H.264 (4:2:0, 8 bit) in mp4, or
    VP8/VP9/AV1 in webm. Anything else (an AVI, an mkv, MPEG-4 Part 2, 4:4:4 H.264) needs
    :func:`write_h264_copy` to be seen."""
    codecs = BROWSER_CODECS.get(Path(info.path).suffix.lower(), ())
    if info.codec.split(" ")[0].lower() not in codecs:
        return False
    return Path(info.path).suffix.lower() == ".webm" or info.pix_fmt.split("(")[0] in ("yuv420p", "yuvj420p")


def write_h264_copy(source: str | os.PathLike, target: str | os.PathLike, info: VideoInfo | None = None,
                    limits: VideoLimits | None = None, crf: int = 23) -> Path:
    """An H.264 mp4 (yuv420p, no sound, fast start) of ``source`` at ``target``, for a browser to play.

    ffmpeg (imageio-ffmpeg's binary) runs in a child process group that is killed after
    ``limits.timeout_s``; the copy keeps at most ``limits.max_frames`` frames, its long side at most
    ``limits.decode_max_side`` pixels (even sizes, as 4:2:0 needs). It is written to a temporary name and
    renamed, so a half-written copy is never served. Raises ``VideoError`` with the reason.
    """
    limits = limits or VideoLimits()
    info = info or probe_video(source, limits)
    scale = min(1.0, limits.decode_max_side / max(info.width, info.height, 1))
    width, height = (max(2, int(round(v * scale / 2)) * 2) for v in (info.width, info.height))
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.stem}.{os.getpid()}.partial.mp4")
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-i", os.fspath(source),
               "-map", "0:v:0", "-an", "-frames:v", str(limits.max_frames), "-vf", f"scale={width}:{height}",
               "-c:v", "libx264", "-preset", "veryfast", "-crf", str(int(crf)), "-pix_fmt", "yuv420p",
               "-movflags", "+faststart", os.fspath(partial)]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, start_new_session=_POSIX)
    try:
        _, stderr = process.communicate(timeout=limits.timeout_s)
    except subprocess.TimeoutExpired:
        if _POSIX:
            os.killpg(process.pid, signal.SIGKILL)
        else:  # pragma: no cover
            process.kill()
        process.communicate()
        partial.unlink(missing_ok=True)
        raise VideoError(f"making a playable copy of {Path(source).name} took longer than "
                           f"{limits.timeout_s:g} s and was stopped") from None
    if process.returncode != 0 or not partial.is_file() or partial.stat().st_size == 0:
        partial.unlink(missing_ok=True)
        said = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise VideoError(f"no playable copy of {Path(source).name} could be made ({said[0][:200]})")
    os.replace(partial, target)
    return target


def write_video(frames, path: str | os.PathLike, fps: float = 10.0, crf: int = 18) -> Path:
    """Write ``frames`` (T,H,W,3 uint8 RGB, or a list of HWC arrays) as an H.264 mp4 (yuv420p).

    Odd heights or widths are padded by one edge row/column (H.264 with 4:2:0
    chroma needs even sizes). Uses the ffmpeg binary shipped with imageio-ffmpeg.
    """
    array = np.asarray(frames)
    if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8:
        raise ValueError(f"frames must be a (T, H, W, 3) uint8 array, got {array.shape} {array.dtype}")
    if array.shape[0] < 1:
        raise ValueError("no frames to write")
    pad_h, pad_w = array.shape[1] % 2, array.shape[2] % 2
    if pad_h or pad_w:
        array = np.pad(array, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = array.shape[1:3]
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (width, height),
        fps=fps,
        codec="libx264",
        pix_fmt_in="rgb24",
        pix_fmt_out="yuv420p",
        quality=None,
        macro_block_size=1,
        output_params=["-crf", str(int(crf)), "-preset", "veryfast"],
        ffmpeg_log_level="error",
    )
    writer.send(None)  # start the generator
    for frame in array:
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    return path
