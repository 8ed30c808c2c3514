"""What every tab's handlers share: the app's resources, decoded frames, rendered strips, query checks.

:class:`TabContext` is created once per app (:class:`app.callbacks.Callbacks`)
and handed to every tab's handler object (``app/tabs/<tab>.py``). It holds no
per-user data (that is the session state, :mod:`app.session`); its caches are
thread-safe. A tracklet strip is rendered once per (tracklet, border, label,
scale) into a PNG in :func:`app.config.strip_cache_dir` (written atomically) and
returned as a file path, so a ``/retrieve`` call neither redraws nor re-encodes
its images.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from app import config as app_config
from app import resources as app_resources
from app.config import DEFAULT_LIMITS, UploadLimits
from app.validation import UserInputError, check_query, upload_path
from lsmrl.data.video import probe_video
from lsmrl.data.video_write import browser_playable, write_h264_copy
from lsmrl.viz.images import tracklet_strip

DIRECTION_LABELS = {"infrared_to_visible": "infrared → visible", "visible_to_infrared": "visible → infrared"}
ALL = "all"
STRIP_SCALE = 1
QUERY_SCALE = 2
#: Bump when the look of a strip changes, so that stale strip files are not reused.
STRIP_VERSION = 3
STRIP_FILES = 1536  # strip images kept on disk (least recently used are deleted)
PLAYABLE_FILES = 32  # H.264 copies of uploads kept on disk (the oldest are deleted)


def direction_choices(directions: list[str] | None = None) -> list[tuple[str, str]]:
    directions = directions or list(DIRECTION_LABELS)
    return [(DIRECTION_LABELS.get(d, d.replace("_", " ")), d) for d in directions]


def direction_label(direction: str) -> str:
    return DIRECTION_LABELS.get(direction, direction)


def num(value: Any, digits: int = 3) -> str:
    """``value`` with ``digits`` decimals, or an em dash for None/NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"


def rounded(value: Any, digits: int = 4) -> Any:
    """A float rounded for a table cell (None for None/NaN); other values unchanged."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (float, np.floating)):
        return round(float(value), digits)
    return value


def other_modality(modality: str) -> str:
    return "visible" if modality == "infrared" else "infrared"


class LRU:
    """A small thread-safe LRU (decoded frames; strip file paths). ``on_evict(value)`` runs for dropped values."""

    def __init__(self, size: int = 256, on_evict=None):
        self.size = size
        self.on_evict = on_evict
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, compute):
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        value = compute()
        dropped = []
        with self._lock:
            self._data[key] = value
            while len(self._data) > self.size:
                dropped.append(self._data.popitem(last=False)[1])
        if self.on_evict is not None:
            for old in dropped:
                self.on_evict(old)
        return value

    def forget(self, key) -> None:
        with self._lock:
            self._data.pop(key, None)

    def has_prefix(self, first: Any) -> bool:
        """Whether a tuple key starting with ``first`` is held."""
        with self._lock:
            return any(isinstance(key, tuple) and key and key[0] == first for key in self._data)


def content_digest(video: Any) -> str:
    """The sha256 of an uploaded file's bytes: the same clip uploaded twice (the browser and the API upload it
    again for every call) is one entry of the track cache and one playable copy."""
    digest = hashlib.sha256()
    with open(upload_path(video), "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class PlayableCopies:
    """H.264 copies of uploads that a browser cannot play (an AVI, an mkv, MPEG-4 Part 2, ...), for the
    video player only: the query always reads the original upload.

    One copy per upload content (named by its sha256), made once in ``<app temp dir>/playable``, which keeps
    at most ``max_files`` copies (the least recently made or used go first, at each new copy).
    """

    def __init__(self, limits: UploadLimits = DEFAULT_LIMITS, max_files: int = PLAYABLE_FILES):
        self.limits = limits
        self.max_files = max_files
        self._lock = threading.Lock()

    @staticmethod
    def folder() -> Path:
        return app_config.app_temp_dir() / "playable"

    def copy_for(self, video: Any) -> Path | None:
        """The path of a playable copy of ``video``, or None when the browser plays the file as it is.
        Raises ``VideoError`` (in words) when the file is not a video or no copy can be made."""
        source = upload_path(video)
        info = probe_video(source, self.limits.video_limits())
        if browser_playable(info):
            return None
        target = self.folder() / f"{source.stem[:40]}.{content_digest(source)[:16]}.playable.mp4"
        with self._lock:
            if target.is_file():
                os.utime(target)
                return target
            write_h264_copy(source, target, info, self.limits.video_limits())
            copies = sorted(self.folder().glob("*.playable.mp4"), key=lambda p: p.stat().st_mtime, reverse=True)
            for old in copies[self.max_files:]:
                old.unlink(missing_ok=True)
        return target


class TabContext:
    """See the module docstring."""

    def __init__(self, resources: "app_resources.Resources", limits: UploadLimits = DEFAULT_LIMITS):
        self.resources = resources
        self.limits = limits
        self.frame_cache = LRU()
        # a result strip depends only on (tracklet, verdict border): rank and similarity live in the caption,
        # so one strip file serves every query (the SynthVVI demo needs at most 400 x 3); the folder stays
        # bounded (STRIP_FILES files of about 100 kB) by deleting the files the LRU drops
        self._strip_files = LRU(size=STRIP_FILES, on_evict=lambda path: Path(path).unlink(missing_ok=True))
        # people found in recent uploads, so that choosing a person after "Find people" detects nothing again
        self.track_cache = LRU(size=16)
        self.crop_checks = LRU(size=64)  # upload content -> whether it is already a person crop
        self.playable = PlayableCopies(limits)

    def explorer(self, progress=None):
        return self.resources.explorer(progress)

    def frames(self, ex, index: int) -> np.ndarray:
        return self.frame_cache.get(int(index), lambda: ex.tracklet_frames(int(index)))

    def strip(self, ex, index: int, border: str | None, lines: list[str], scale: int = STRIP_SCALE) -> np.ndarray:
        return tracklet_strip(self.frames(ex, index), border=border, label_lines=lines, scale=scale,
                              text_scale=scale)

    def _strip_namespace(self, ex) -> str:
        """What, besides the tracklet and the label, decides a strip's pixels (data set, frames, renderer)."""
        config = getattr(self.resources, "config", None)
        parts = [str(STRIP_VERSION), str(getattr(ex, "fingerprint", "")), str(getattr(ex, "num_frames", ""))]
        if config is not None:
            parts += [str(config.dataset), str(config.data_root)]
        return "|".join(parts)

    def strip_file(self, ex, index: int, border: str | None, lines: list[str], scale: int = STRIP_SCALE) -> str:
        """The path of the strip image of test tracklet ``index``: rendered once per (tracklet, border, label,
        scale) into :func:`app.config.strip_cache_dir`, then served as a file (no re-encoding per call)."""
        key = (int(index), ex.tracklet_row(int(index))["tid"], border, tuple(lines), int(scale))

        def render() -> str:
            digest = hashlib.sha256(json.dumps([self._strip_namespace(ex), *key], ensure_ascii=False)
                                    .encode("utf-8")).hexdigest()[:32]
            return _write_png_once(digest, lambda: self.strip(ex, index, border, lines, scale=scale))

        return self._cached_file(key, render)

    def image_file(self, image: np.ndarray) -> str:
        """A picture computed by a handler (a people preview, a thumbnail, an overlay, an impostor panel) as a
        PNG file named by its content, written once and atomically.

        Gradio saves a returned array under a name made from its bytes but rewrites that file on every call,
        so two calls that return the same picture at once can truncate the file while the first answer is
        being downloaded; a file path is copied by Gradio atomically instead."""
        array = np.ascontiguousarray(image, dtype=np.uint8)
        digest = hashlib.sha256(repr(array.shape).encode() + array.tobytes()).hexdigest()[:32]
        return self._cached_file(("image", digest), lambda: _write_png_once(digest, lambda: array))

    def _cached_file(self, key: tuple, render) -> str:
        path = self._strip_files.get(key, render)
        if not os.path.isfile(path):  # deleted behind our back: render again
            self._strip_files.forget(key)
            path = self._strip_files.get(key, render)
        return path

    def query_index(self, ex, query: Any) -> int:
        try:
            return ex.test_index(check_query(query))
        except UserInputError:
            raise
        except Exception as error:  # an LSMRLError with the id in it
            raise UserInputError(f"{error}. Use a test tracklet id such as "
                                 f"{ex.tracklet_row(0)['tid']} or pick a query in the Retrieval tab") from None

    def check_query_direction(self, ex, index: int, direction: str) -> None:
        t = ex.tracklet_row(index)
        wanted = ex.query_modality(direction)
        if wanted is not None and t["modality"] != wanted:
            other = ex.direction_of(index)
            hint = f"switch the direction to {DIRECTION_LABELS.get(other, other)}, or " if other else ""
            label = DIRECTION_LABELS.get(direction, direction)
            raise UserInputError(f"{t['tid']} is a {t['modality']} tracklet, and {label} needs a {wanted} query: "
                                 f"{hint}choose a {wanted} tracklet")
        if not ex.is_query(index, direction):
            raise UserInputError(f"{t['tid']} is not a query of {DIRECTION_LABELS.get(direction, direction)}")

    @staticmethod
    def query_caption(ex, index: int) -> list[str]:
        t = ex.tracklet_row(index)
        return [f"query {t['tid']}", f"id {t['pid']}  cam {t['camid']}  {t['modality']}"]

    def query_strip(self, ex, index: int, scale: int = QUERY_SCALE) -> np.ndarray:
        return self.strip(ex, index, "query", self.query_caption(ex, index), scale=scale)

    def query_strip_file(self, ex, index: int, scale: int = QUERY_SCALE) -> str:
        return self.strip_file(ex, index, "query", self.query_caption(ex, index), scale=scale)

    def result_gallery(self, ex, items: list[dict], verdict: bool = True) -> list[tuple[str, str]]:
        gallery = []
        for item in items:
            mark = word = ""
            border = None
            if verdict and "is_match" in item:
                border = "match" if item["is_match"] else "wrong"
                mark = " ✓" if item["is_match"] else " ✗"
                word = "  same id" if item["is_match"] else "  other id"
            # nothing query-specific in the pixels (rank, similarity): the strip file is shared by all queries
            lines = [word.strip() or str(item["tid"]), f"id {item['pid']}  cam {item['camid']}"]
            caption = (f"#{item['rank']} · sim {item['similarity']:.3f} · id {item['pid']} · cam {item['camid']} · "
                       f"{item['tid']}{mark}")
            gallery.append((self.strip_file(ex, item["test_index"], border, lines), caption))
        return gallery

    @staticmethod
    def query_label(row: dict) -> str:
        ap = "no true match" if row["ap"] is None else f"AP {row['ap']:.2f}"
        return f"{row['tid']} · id {row['pid']} · cam {row['camid']} · {ap}"



def repo_example_video(path: str | os.PathLike | None, **kwargs) -> gr.Video:
    """A hidden ``gr.Video`` input of the public API whose default is a file of this repository, named by its
    path relative to the repository's root (``assets/cache/examples/...``).

    Why: a plain ``gr.Video(value=path)`` shows the server's absolute path as the default on the "Use via API"
    page, and Gradio replaces its URL with a foreign example URL (its ``example_inputs``); this default names
    neither, and the snippet ``handle_file('assets/cache/examples/...')`` runs as shown from a checkout. Set
    on the instance, not by subclassing: Gradio writes a ``.pyi`` file beside every component subclass.
    """
    video = gr.Video(value=None, **kwargs)
    if path is not None:
        try:
            relative = Path(path).resolve().relative_to(app_config.REPO_ROOT).as_posix()
        except ValueError:  # outside the repository: its name alone, never the server's folders
            relative = Path(path).name
        default = {"path": relative, "url": relative, "orig_name": Path(relative).name, "size": None,
                   "mime_type": None, "is_stream": False, "meta": {"_type": "gradio.FileData"}}
        video.value = default
        video.example_inputs = lambda: dict(default)
    return video


def _refresh_key(value: Any) -> Any:
    """What of an input decides a tab's content (of a session: the current query and match, not the
    thumbnails on show)."""
    if isinstance(value, dict) and "kind" in value:
        return [value.get(k) for k in ("kind", "query", "video", "match", "direction")]
    return value


def _write_png_once(digest: str, pixels) -> str:
    """``<strip cache>/<digest>.png`` from ``pixels()`` (an HxWx3 uint8 array), written under a temporary name
    and renamed, only when absent; the path."""
    folder = app_config.strip_cache_dir()
    path = folder / f"{digest}.png"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{digest}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            Image.fromarray(pixels()).save(tmp, format="PNG", compress_level=1)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return str(path)


def refresh_if_stale(name: str, handler, n_outputs: int):
    """A tab-select handler: run ``handler(*inputs)`` only if its inputs changed since this session last saw
    the tab (the last input is the per-session record of what each tab shows)."""

    def run(*args):
        *inputs, rendered = args
        rendered = dict(rendered or {})
        key = json.dumps([_refresh_key(v) for v in inputs], default=str)
        if rendered.get(name) == key:
            return (*([gr.skip()] * n_outputs), rendered)
        outputs = handler(*inputs)
        rendered[name] = key
        return (*outputs, rendered)

    run.__name__ = f"refresh_{name}"
    return run


__all__ = ["ALL", "DIRECTION_LABELS", "LRU", "PlayableCopies", "QUERY_SCALE", "STRIP_SCALE",
           "TabContext", "content_digest", "direction_choices", "direction_label", "num", "other_modality",
           "refresh_if_stale", "repo_example_video", "rounded"]
