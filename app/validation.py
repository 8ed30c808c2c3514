"""Input checks of the app and the mapping of lsmrl's errors to ``gr.Error`` (plain words, the app stays up).

* :func:`read_upload` checks an uploaded video against :class:`app.config.UploadLimits`
  (bytes, frames, resolution, duration): checks the cheap things in this process,
  then decodes the frames in one child process with a timeout
  (:func:`lsmrl.data.video.read_video`, which refuses too many pixels or frames
  before decoding) and words every limit the same way: a hostile or broken file
  can neither hang nor crash the server.
* :func:`user_errors` (a decorator for every event handler): ``VideoError``,
  ``CheckpointError``, ``DatasetLayoutError`` and any other ``LSMRLError`` become
  a ``gr.Error`` whose title says what kind of input was wrong; an unexpected
  exception is logged with its traceback and shown as a short ``gr.Error``.
"""

from __future__ import annotations

import functools
import html
import inspect
import logging
import os
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from app.config import DEFAULT_LIMITS, UploadLimits
from lsmrl.data.tracklet import MODALITIES
from lsmrl.data.video import read_video
from lsmrl.errors import CheckpointError, ConfigError, DatasetLayoutError, LSMRLError, VideoError

LOG = logging.getLogger("lsmrl.app")

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm")
MAX_TOP_K = 50




class UserInputError(LSMRLError):
    """A value typed or chosen in the app is not acceptable (the message says which and why)."""


# =========================================================================== simple values
def check_top_k(value: Any) -> int:
    try:
        k = int(float(value))
    except (TypeError, ValueError):
        raise UserInputError(f"top-k must be a whole number between 1 and {MAX_TOP_K}, got {value!r}") from None
    if not 1 <= k <= MAX_TOP_K:
        raise UserInputError(f"top-k must be between 1 and {MAX_TOP_K}, got {k}")
    return k


def cap_top_k(value: Any) -> tuple[int, str]:
    """A top-k typed in the browser: ``(k, note)``. Over :data:`MAX_TOP_K` it is capped, and ``note`` says so
    in words (shown above the results: never a silent cut); below 1 or not a number it is refused."""
    try:
        k = int(float(value))
    except (TypeError, ValueError):
        raise UserInputError(f"top-k must be a whole number between 1 and {MAX_TOP_K}, got {value!r}") from None
    if k < 1:
        raise UserInputError(f"top-k must be between 1 and {MAX_TOP_K}, got {k}")
    if k > MAX_TOP_K:
        return MAX_TOP_K, (f"Top-k {k} is over the maximum of {MAX_TOP_K}: the top {MAX_TOP_K} are shown. The "
                           "first true match is named under the list wherever it ranks.")
    return k, ""


def check_direction(value: Any, directions: list[str]) -> str:
    text = str(value or "").strip()
    aliases = {"ir2vis": "infrared_to_visible", "ir->vis": "infrared_to_visible", "infrared->visible":
               "infrared_to_visible", "vis2ir": "visible_to_infrared", "vis->ir": "visible_to_infrared",
               "visible->infrared": "visible_to_infrared"}
    text = aliases.get(text.lower().replace(" ", ""), text)
    if text not in directions:
        words = {"infrared_to_visible": "infrared → visible", "visible_to_infrared": "visible → infrared"}
        named = ", ".join(f"{d} ({words[d]})" if d in words else d for d in directions)
        raise UserInputError(f"the direction must be one of {named}, got {value!r}")
    return text


def check_query(value: Any) -> str:
    text = str(value if value is not None else "").strip()
    if not text:
        raise UserInputError("choose a query tracklet first (an id such as test/00042, "
                             "or pick one in the Retrieval tab)")
    return text


def check_modality(value: Any) -> str:
    text = str(value or "").strip().lower()
    aliases = {"ir": "infrared", "thermal": "infrared", "rgb": "visible", "vis": "visible"}
    text = aliases.get(text, text)
    if text not in MODALITIES:
        raise UserInputError(f"declare the video's modality: 'visible' or 'infrared' (got {value!r})")
    return text


def check_person(value: Any) -> str | int:
    """"auto" (the default) or a person's track id (a whole number from /detect_people)."""
    text = str(value if value not in (None, "") else "auto").strip().lower()
    if text == "auto":
        return "auto"
    text = text.removeprefix("person").strip()
    if not text.isdigit():
        raise UserInputError(f"the person is 'auto' or a track id from /detect_people such as 1, got {value!r}")
    return int(text)


def upload_path(value: Any) -> Path:
    """The local path of an uploaded file from a ``gr.Video``/``gr.File`` value (str, dict or FileData)."""
    if value is None or value == "":
        raise UserInputError("upload a video first (mp4, avi, mkv or webm)")
    if isinstance(value, dict):
        value = value.get("path") or value.get("video") or value.get("name")
        if isinstance(value, dict):
            value = value.get("path")
    path = getattr(value, "path", value)
    if not isinstance(path, (str, os.PathLike)):
        raise UserInputError("the upload could not be read; upload the video again")
    return Path(path)


# =========================================================================== uploads
def read_upload(value: Any, num_frames: int, limits: UploadLimits = DEFAULT_LIMITS):
    """``(frames (T, H, W, 3) uint8, info)`` of an uploaded video, within ``limits``: ``num_frames`` evenly
    spaced frames, or every frame once when the video has fewer; raises VideoError."""
    path = upload_path(value)
    if not path.is_file():
        raise VideoError("the uploaded file is gone (uploads are cleaned after a while); upload it again")
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise VideoError(f"{path.name} is not a video file this app reads; upload an mp4, avi, mkv or webm")
    size = path.stat().st_size
    if size == 0:
        raise VideoError(f"{path.name} is empty (0 bytes)")
    if size > limits.max_bytes:
        raise VideoError(f"{path.name} is {size / 2**20:.1f} MB; the limit is {limits.max_bytes / 2**20:.0f} MB. "
                         "Trim or downscale it first")
    # one child process decodes and reports the size and length; the limits are worded here, the same way
    # whether the child refused the file (too many pixels or frames) or it was decoded first (duration, sides)
    try:
        frames, info = read_video(path, num_frames, "evenly", limits=limits.video_limits(), at_most=True)
    except VideoError as error:
        kind, detail = getattr(error, "kind", ""), getattr(error, "detail", "")
        if kind == "resolution":
            width, height = (int(v) for v in detail.split("x"))
            raise VideoError(_resolution_message(path.name, width, height, limits)) from None
        if kind == "too_long":
            raise VideoError(_frames_message(path.name, int(detail), limits)) from None
        raise
    if info.duration_s and info.duration_s > limits.max_duration_s:
        raise VideoError(f"{path.name} lasts {info.duration_s:.0f} s; the limit is {limits.max_duration_s:.0f} s. "
                         "Trim it to the part that shows the person")
    if info.num_frames > limits.max_frames:
        raise VideoError(_frames_message(path.name, info.num_frames, limits))
    long_side, short_side = max(info.width, info.height), min(info.width, info.height)
    if long_side > max(limits.max_width, limits.max_height) or short_side > min(limits.max_width, limits.max_height):
        raise VideoError(_resolution_message(path.name, info.width, info.height, limits))
    return frames, info


def _frames_message(name: str, frames: int, limits: UploadLimits) -> str:
    return f"{name} has {frames} frames; the limit is {limits.max_frames}. Trim it to the part that shows the person"


def _resolution_message(name: str, width: int, height: int, limits: UploadLimits) -> str:
    return (f"{name} is {width}x{height}; the limit is {limits.max_width}x{limits.max_height}. "
            "Crop the person or downscale it first")


# =========================================================================== errors
_TITLES: tuple[tuple[type, str], ...] = (
    (VideoError, "Video not usable"),
    (CheckpointError, "Checkpoint problem"),
    (DatasetLayoutError, "Data set problem"),
    (ConfigError, "Configuration problem"),
    (UserInputError, "Check the input"),
    (LSMRLError, "Cannot do that"),
)


def to_gr_error(error: BaseException) -> gr.Error:
    """The ``gr.Error`` shown for ``error`` (see the module docstring)."""
    if isinstance(error, gr.Error):
        return error
    for kind, title in _TITLES:
        if isinstance(error, kind):
            return gr.Error(str(error), title=title, print_exception=False)
    if isinstance(error, TimeoutError):
        return gr.Error(str(error) or "that took too long; try again", title="Busy", print_exception=False)
    if isinstance(error, (IndexError, ValueError, KeyError)):
        return gr.Error(f"that input is not valid here: {error}", title="Check the input", print_exception=False)
    LOG.exception("unexpected error in a handler", exc_info=error)
    return gr.Error(f"something went wrong ({type(error).__name__}: {error}). The app is still running; "
                    "try another input, and report this if it keeps happening", title="Unexpected error",
                    print_exception=False)


def warn(error: BaseException) -> str:
    """Show ``error`` as one toast titled by its kind (a ``gr.Warning``); returns the message.

    Why not a raised ``gr.Error`` in the browser: Gradio 6.31's front end heads
    every toast with its level ("Error", "Warning") and ignores the title, and a
    raised error does not let the handler clear its outputs. So the kind of
    problem leads the message, in bold, and the toast comes once per event. The
    API keeps raising ``gr.Error`` (its title reaches ``gradio_client``).
    """
    shown = to_gr_error(error)
    title = shown.title or "Check the input"
    gr.Warning(f"<strong>{html.escape(title)}</strong>: {html.escape(str(shown.message))}", title=title,
               duration=12)
    return shown.message


def ui_errors(on_error: Callable[..., Any]) -> Callable[[Callable], Callable]:
    """Decorator for a browser-only handler: an exception becomes one titled toast (:func:`warn`), and the
    handler returns ``on_error(message, *args, **kwargs)`` instead, so what the failed call would have
    replaced is cleared rather than left showing the previous result."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - every error becomes a message; the server stays up
                return on_error(warn(error), *args, **kwargs)

        return wrapper

    return decorate


def user_errors(fn: Callable) -> Callable:
    """Decorator: run ``fn`` and turn every exception into a readable ``gr.Error`` (keeps the signature,
    so gradio still sees ``gr.Progress`` and ``gr.SelectData`` parameters)."""
    if inspect.isgeneratorfunction(fn):  # pragma: no cover - no generator handlers yet
        raise TypeError("user_errors does not wrap generators")

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as error:  # noqa: BLE001 - every error becomes a message; the server stays up
            raise to_gr_error(error) from error

    return wrapper


__all__ = ["MAX_TOP_K", "UserInputError", "VIDEO_EXTENSIONS", "cap_top_k",
           "check_direction", "check_modality", "check_person", "check_query", "check_top_k", "read_upload", "to_gr_error",
           "ui_errors", "upload_path", "user_errors", "warn"]
