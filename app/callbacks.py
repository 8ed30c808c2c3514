"""Event handlers: validate the inputs, call :class:`lsmrl.analysis.Explorer`, turn results into UI values.

Every public handler is wrapped by :func:`app.validation.user_errors`, so any
failure reaches the user as a ``gr.Error`` in plain words and the server keeps
running. Handlers hold no per-user data: the per-session selection is a
``gr.State`` value (:func:`app.state.new_selection`) passed in and returned.
Heavy shared things (the Explorer, decoded frames, the rendered strips) live in
:class:`Callbacks` and :class:`app.state.Resources` and are thread-safe. A
tracklet strip is rendered once per (tracklet, border, label, scale) into a PNG
in :func:`app.state.strip_cache_dir` (written atomically) and returned as a file
path, so a ``/retrieve`` call neither redraws nor re-encodes its images.

The API names (``ui.py``) map to: ``/retrieve`` -> :meth:`Callbacks.retrieve`,
``/retrieve_video`` -> :meth:`Callbacks.retrieve_video`, ``/attention`` ->
:meth:`Callbacks.attention`, ``/diffusion`` -> :meth:`Callbacks.diffusion`,
``/modality_gap`` -> :meth:`Callbacks.modality_gap`, ``/failures`` ->
:meth:`Callbacks.failures`, ``/impostors``, ``/export_ranking``,
``/model_card``, ``/compare``.
"""

import csv
import hashlib
import json
import math
import os
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from app import state as app_state
from app.gpu import gpu
from app.validation import (DEFAULT_LIMITS, UploadLimits, UserInputError, check_direction, check_modality,
                            check_query, check_top_k, read_upload, upload_path, user_errors)

DIRECTION_LABELS = {"infrared_to_visible": "infrared → visible", "visible_to_infrared": "visible → infrared"}
ALL = "all"
ORDERS = (("by identity", "identity"), ("hardest first (lowest AP)", "hardest"), ("easiest first", "easiest"))
METHODS = (("Grad-CAM", "gradcam"), ("HiResCAM", "hirescam"), ("occlusion", "occlusion"),
           ("attention rollout", "rollout"))
METHOD_NAMES = {value: label for label, value in METHODS}
TARGETS = (("similarity to the match", "match"), ("identity prompt", "prompt"))
MAX_THUMBNAILS = 30
STRIP_SCALE = 1
QUERY_SCALE = 2
DISPLAY_HEIGHT = 128  # uploaded frames are resized to this height for the strips
#: Bump when the look of a strip changes, so that stale strip files are not reused.
STRIP_VERSION = 2
STRIP_FILES = 1536  # strip images kept on disk (least recently used are deleted)


def direction_choices(directions: list[str] | None = None) -> list[tuple[str, str]]:
    directions = directions or list(DIRECTION_LABELS)
    return [(DIRECTION_LABELS.get(d, d.replace("_", " ")), d) for d in directions]


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"


def _round(value: Any, digits: int = 4) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (float, np.floating)):
        return round(float(value), digits)
    return value


def _other_modality(modality: str) -> str:
    return "visible" if modality == "infrared" else "infrared"


class _LRU:
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


class Callbacks:
    """The handlers of one app (see the module docstring)."""

    def __init__(self, resources: "app_state.Resources", limits: UploadLimits = DEFAULT_LIMITS):
        self.resources = resources
        self.limits = limits
        self._frames = _LRU()
        # a result strip depends only on (tracklet, verdict border): rank and similarity live in the caption,
        # so one strip file serves every query (the SynthVVI demo needs at most 400 x 3); the folder stays
        # bounded (STRIP_FILES files of about 100 kB) by deleting the files the LRU drops
        self._strip_files = _LRU(size=STRIP_FILES, on_evict=lambda path: Path(path).unlink(missing_ok=True))
        self._directions: dict[str, tuple[str | None, frozenset]] = {}

    # ================================================================== helpers
    def explorer(self, progress=None):
        return self.resources.explorer(progress)

    def frames(self, ex, index: int) -> np.ndarray:
        return self._frames.get(int(index), lambda: ex.tracklet_frames(int(index)))

    def strip(self, ex, index: int, border: str | None, lines: list[str], scale: int = STRIP_SCALE) -> np.ndarray:
        from lsmrl.analysis.render import tracklet_strip

        return tracklet_strip(self.frames(ex, index), border=border, label_lines=lines, scale=scale)

    def _strip_namespace(self, ex) -> str:
        """What, besides the tracklet and the label, decides a strip's pixels (data set, frames, renderer)."""
        config = getattr(self.resources, "config", None)
        parts = [str(STRIP_VERSION), str(getattr(ex, "fingerprint", "")), str(getattr(ex, "num_frames", ""))]
        if config is not None:
            parts += [str(config.dataset), str(config.data_root)]
        return "|".join(parts)

    def strip_file(self, ex, index: int, border: str | None, lines: list[str], scale: int = STRIP_SCALE) -> str:
        """The path of the strip image of test tracklet ``index``: rendered once per (tracklet, border, label,
        scale) into :func:`app.state.strip_cache_dir`, then served as a file (no re-encoding per call)."""
        t = ex.dataset.test[int(index)]
        key = (int(index), str(t.tid), border, tuple(lines), int(scale))

        def render() -> str:
            digest = hashlib.sha256(json.dumps([self._strip_namespace(ex), *key], ensure_ascii=False)
                                    .encode("utf-8")).hexdigest()[:32]
            folder = app_state.strip_cache_dir()
            path = folder / f"{digest}.png"
            if not path.is_file():
                from PIL import Image

                folder.mkdir(parents=True, exist_ok=True)
                image = Image.fromarray(self.strip(ex, index, border, lines, scale=scale))
                tmp = folder / f".{digest}.{os.getpid()}.{threading.get_ident()}.tmp"
                try:
                    image.save(tmp, format="PNG", compress_level=1)
                    os.replace(tmp, path)
                finally:
                    tmp.unlink(missing_ok=True)
            return str(path)

        path = self._strip_files.get(key, render)
        if not os.path.isfile(path):  # deleted behind our back: render again
            self._strip_files.forget(key)
            path = self._strip_files.get(key, render)
        return path

    def _query_index(self, ex, query: Any) -> int:
        try:
            return ex.test_index(check_query(query))
        except UserInputError:
            raise
        except Exception as error:  # an LSMRLError with the id in it
            raise UserInputError(f"{error}. Use a test tracklet id such as "
                                 f"{ex.dataset.test[0].tid or '0'} or pick a query in the Retrieval tab") from None

    def _direction_info(self, ex, direction: str) -> tuple[str | None, frozenset]:
        """(query modality, test indices of the queries) of ``direction``, computed once per direction."""
        info = self._directions.get(direction)
        if info is None:
            rows = ex.queries(direction)
            info = (rows[0]["modality"] if rows else None, frozenset(r["test_index"] for r in rows))
            self._directions[direction] = info
        return info

    def _direction_query_modality(self, ex, direction: str) -> str | None:
        return self._direction_info(ex, direction)[0]

    def _check_query_direction(self, ex, index: int, direction: str) -> None:
        t = ex.dataset.test[index]
        wanted = self._direction_query_modality(ex, direction)
        if wanted is not None and t.modality != wanted:
            others = [d for d in ex.directions if self._direction_query_modality(ex, d) == t.modality]
            hint = f"switch the direction to {DIRECTION_LABELS.get(others[0], others[0])}, or " if others else ""
            label = DIRECTION_LABELS.get(direction, direction)
            raise UserInputError(f"{t.tid or index} is a {t.modality} tracklet, and {label} needs a {wanted} query: "
                                 f"{hint}choose a {wanted} tracklet")
        if index not in self._direction_info(ex, direction)[1]:
            raise UserInputError(f"{t.tid or index} is not a query of {DIRECTION_LABELS.get(direction, direction)}")

    def _query_strip(self, ex, index: int, scale: int = QUERY_SCALE) -> np.ndarray:
        t = ex.dataset.test[index]
        return self.strip(ex, index, "query", [f"query {t.tid or index}", f"id {t.pid}  cam {t.camid}  {t.modality}"],
                          scale=scale)

    def _query_strip_file(self, ex, index: int, scale: int = QUERY_SCALE) -> str:
        t = ex.dataset.test[index]
        return self.strip_file(ex, index, "query",
                               [f"query {t.tid or index}", f"id {t.pid}  cam {t.camid}  {t.modality}"], scale=scale)

    def _result_gallery(self, ex, items: list[dict], verdict: bool = True) -> list[tuple[str, str]]:
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

    # ================================================================== start-up and query lists
    @user_errors
    def init(self, selection: dict | None, progress=gr.Progress()):
        """demo.load: wait for the model, then fill the filters, the query list and the stage choices."""
        ex = self.explorer(progress)
        selection = dict(selection or app_state.new_selection())
        direction = selection.get("direction") if selection.get("direction") in ex.directions else ex.directions[0]
        selection["direction"] = direction
        identity, camera, query, thumbs, selection = self.list_queries(direction, ALL, ALL, "identity", selection)
        from lsmrl.analysis.modality_gap import STAGE_LABELS

        stages = [(STAGE_LABELS.get(s, s), s) for s in ex.stages]
        others = [(f"the baseline ({Path(ex.baseline.path).stem})", "baseline")] if ex.baseline is not None else []
        if ex.compare_bundle is not None:
            others.insert(0, (f"the compare checkpoint ({Path(ex.compare_bundle.path).stem})", "compare"))
        models = [("main", "main")] + [(o[1], o[1]) for o in reversed(others)]
        return (self.resources.status_markdown(),
                gr.update(choices=direction_choices(ex.directions), value=direction),
                identity, camera, query, thumbs, selection,
                gr.update(choices=stages, value="embedding" if "embedding" in ex.stages else ex.stages[-1]),
                gr.update(choices=others or [("no other checkpoint loaded", "")], value=others[0][1] if others else ""),
                gr.update(choices=models, value="main"))

    @user_errors
    def status(self):
        return self.resources.status_markdown()

    def _query_rows(self, ex, direction: str, identity: Any, camera: Any, order: str) -> list[dict]:
        rows = ex.queries(direction)
        if identity not in (None, "", ALL):
            rows = [r for r in rows if str(r["pid"]) == str(identity)]
        if camera not in (None, "", ALL):
            rows = [r for r in rows if str(r["camid"]) == str(camera)]
        if order == "hardest":
            rows = sorted(rows, key=lambda r: (r["ap"] is None, r["ap"] if r["ap"] is not None else 0, r["test_index"]))
        elif order == "easiest":
            rows = sorted(rows, key=lambda r: (r["ap"] is None, -(r["ap"] or 0), r["test_index"]))
        return rows

    @staticmethod
    def _query_label(row: dict) -> str:
        ap = "no true match" if row["ap"] is None else f"AP {row['ap']:.2f}"
        return f"{row['tid']} · id {row['pid']} · cam {row['camid']} · {ap}"

    @user_errors
    def list_queries(self, direction: str, identity: Any, camera: Any, order: str, selection: dict | None,
                     progress=gr.Progress()):
        """Filter the queries of ``direction``: identity and camera dropdowns, the query dropdown, thumbnails."""
        ex = self.explorer(progress)
        direction = check_direction(direction, ex.directions)
        all_rows = ex.queries(direction)
        pids = sorted({r["pid"] for r in all_rows})
        cams = sorted({r["camid"] for r in all_rows})
        identity = identity if identity in (None, "", ALL) or str(identity) in {str(p) for p in pids} else ALL
        camera = camera if camera in (None, "", ALL) or str(camera) in {str(c) for c in cams} else ALL
        rows = self._query_rows(ex, direction, identity, camera, order or "identity")
        selection = dict(selection or app_state.new_selection(direction))
        current = selection.get("query")
        tids = [r["tid"] for r in rows]
        value = current if current in tids else (tids[0] if tids else None)
        shown = rows[:MAX_THUMBNAILS]
        thumbs = []
        for r in shown:
            frames = self.frames(ex, r["test_index"])
            ap = "—" if r["ap"] is None else f"{r['ap']:.2f}"
            thumbs.append((frames[len(frames) // 2], f"{r['tid']} · id {r['pid']} · cam {r['camid']} · AP {ap}"))
        selection.update(direction=direction, thumbnails=[r["tid"] for r in shown])
        return (gr.update(choices=[(ALL, ALL)] + [(str(p), str(p)) for p in pids], value=str(identity or ALL)),
                gr.update(choices=[(ALL, ALL)] + [(str(c), str(c)) for c in cams], value=str(camera or ALL)),
                gr.update(choices=[(self._query_label(r), r["tid"]) for r in rows], value=value),
                thumbs, selection)

    @user_errors
    def pick_thumbnail(self, selection: dict | None, evt: gr.SelectData):
        """A thumbnail was clicked: make it the query (the retrieval runs next)."""
        shown = (selection or {}).get("thumbnails") or []
        if evt.index is None or not 0 <= int(evt.index) < len(shown):
            return gr.skip()
        return gr.update(value=shown[int(evt.index)])

    # ================================================================== retrieval
    def _ranked_summary(self, result: dict) -> str:
        q = result["query"]
        head = (f"**Query** `{q['tid']}`: identity {q['pid']}, camera {q['camid']}, {q['modality']}, "
                f"ranked against the {_other_modality(q['modality'])} gallery "
                f"({DIRECTION_LABELS.get(result['direction'], result['direction'])}).")
        if result.get("first_match_rank") is None:
            return head + ("\n\nNo true match is left in the gallery after the camera rule, so the metric skips "
                           "this query (no AP).")
        top = result["items"][0] if result["items"] else None
        verdict = ("the top-1 is a true match" if top and top["is_match"] else
                   f"the top-1 is identity {top['pid']} (wrong)" if top else "")
        return (head + f"\n\n**AP** {_num(result['ap'])} · **INP** {_num(result['inp'])} · "
                f"**first true match at rank {result['first_match_rank']}** of "
                f"{result['num_matches']} true matches; {verdict}.")

    @user_errors
    def retrieve(self, query: str, direction: str, top_k: float, selection: dict | None = None,
                 progress=gr.Progress()):
        """/retrieve: the ranked gallery of a test tracklet. Returns (ranked list JSON, summary, query strip,
        result strips, selection)."""
        ex = self.explorer(progress)
        direction = check_direction(direction, ex.directions)
        k = check_top_k(top_k)
        index = self._query_index(ex, query)
        self._check_query_direction(ex, index, direction)
        result = ex.retrieve(index, direction, k)
        selection = dict(selection or app_state.new_selection(direction))
        selection.update(direction=direction, query=result["query"]["tid"], top_k=k, upload=None,
                         items=[item["tid"] for item in result["items"]],
                         match=result["items"][0]["tid"] if result["items"] else None)
        return (result, self._ranked_summary(result), self._query_strip_file(ex, index),
                self._result_gallery(ex, result["items"]), selection)

    def _resize_for_display(self, frames: np.ndarray) -> np.ndarray:
        from PIL import Image

        height, width = frames.shape[1:3]
        if height == DISPLAY_HEIGHT:
            return frames
        new_w = max(1, round(width * DISPLAY_HEIGHT / height))
        return np.stack([np.asarray(Image.fromarray(f).resize((new_w, DISPLAY_HEIGHT), Image.BILINEAR))
                         for f in frames])

    @user_errors
    @gpu(duration=60)
    def retrieve_video(self, video: Any, modality: str, top_k: float, selection: dict | None = None,
                       progress=gr.Progress()):
        """/retrieve_video: rank the gallery for an uploaded clip of the declared modality. Returns (ranked list
        JSON, summary, the sampled frames as a strip, result strips, selection)."""
        from lsmrl.analysis.render import tracklet_strip

        modality = check_modality(modality)
        k = check_top_k(top_k)
        upload_path(video)  # "upload a video first" before waiting for the model
        ex = self.explorer(progress)
        progress(0.2, desc="decoding the video (in a separate process)")
        frames, info = read_upload(video, ex.num_frames, self.limits)
        progress(0.6, desc="embedding and ranking")
        result = ex.retrieve_features(frames, modality, k)
        name = Path(upload_path(video)).name
        result["query"].update(file=name, width=info.width, height=info.height, fps=info.fps,
                               duration_s=info.duration_s, num_frames_in_file=info.num_frames)
        strip = tracklet_strip(self._resize_for_display(frames), border="query",
                               label_lines=[f"upload {name}", f"{modality}, {len(frames)} frames sampled evenly"])
        summary = (f"**Uploaded** `{name}`: {info.num_frames} frames, {info.width}x{info.height}, "
                   f"{info.duration_s:.1f} s; {len(frames)} frames sampled evenly; declared **{modality}**, ranked "
                   f"against the {_other_modality(modality)} gallery. The identity of an upload is unknown, so the "
                   "strips have no green/red verdict and there is no AP.")
        selection = dict(selection or app_state.new_selection(result["direction"]))
        selection.update(upload=name, items=[item["tid"] for item in result["items"]], top_k=k,
                         match=result["items"][0]["tid"] if result["items"] else None)
        return result, summary, strip, self._result_gallery(ex, result["items"], verdict=False), selection

    @user_errors
    def select_match(self, selection: dict | None, evt: gr.SelectData):
        """A result strip was clicked: it becomes the match of the Attention tab."""
        selection = dict(selection or app_state.new_selection())
        items = selection.get("items") or []
        if evt.index is None or not 0 <= int(evt.index) < len(items):
            return gr.skip(), gr.skip()
        selection["match"] = items[int(evt.index)]
        note = f"Selected match: `{selection['match']}` (rank {int(evt.index) + 1})"
        if selection.get("upload"):
            note += ". Attention maps need a test tracklet as the query, not an upload."
        else:
            note += f" for query `{selection.get('query')}`; the Attention tab explains this pair."
        return selection, note

    @staticmethod
    def sync_tabs(selection: dict | None):
        """Copy the selection into the other tabs' inputs (query, match, direction)."""
        selection = selection or {}
        query = selection.get("query") if not selection.get("upload") else None
        direction = selection.get("direction") or "infrared_to_visible"

        def query_update():  # a fresh dict each time: gradio consumes update dicts in place
            return gr.update(value=query) if query else gr.skip()

        return (query_update(), gr.update(value=selection.get("match") or ""), gr.update(value=direction),
                query_update(), query_update(), gr.update(value=direction))

    @user_errors
    def export_ranking(self, ranked: Any, fmt: str):
        """/export_ranking: the ranked list (the JSON of /retrieve or /retrieve_video) as a CSV or JSON file."""
        if isinstance(ranked, str):
            try:
                ranked = json.loads(ranked)
            except ValueError:
                raise UserInputError("the ranked list is not valid JSON; run a retrieval first") from None
        if not isinstance(ranked, dict) or not ranked.get("items"):
            raise UserInputError("run a retrieval first: there is no ranked list to export")
        fmt = str(fmt or "csv").lower()
        if fmt not in ("csv", "json"):
            raise UserInputError(f"export format must be csv or json, got {fmt!r}")
        ex = self.resources.explorer() if self.resources.ready else None
        query = ranked.get("query") or {}
        rows = []
        for item in ranked["items"]:
            row = {key: item.get(key) for key in ("rank", "tid", "pid", "camid", "modality", "similarity", "distance",
                                                  "is_match", "test_index")}
            if ex is not None and item.get("test_index") is not None:
                t = ex.dataset.test[int(item["test_index"])]
                source = t.video or (str(Path(t.frames[0]).parent) if t.frames else "")
                row["path"] = str(source)
            rows.append(row)
        out_dir = app_state.app_temp_dir() / "exports" / uuid.uuid4().hex[:12]
        out_dir.mkdir(parents=True, exist_ok=True)
        label = str(query.get("tid") or query.get("file") or "upload").replace("/", "-")
        path = out_dir / f"ranking-{label}-{ranked.get('direction', '')}.{fmt}"
        if fmt == "json":
            payload = {key: ranked.get(key) for key in ("direction", "metric", "model", "query", "ap", "inp",
                                                        "first_match_rank", "num_matches", "note") if key in ranked}
            payload["items"] = rows
            path.write_text(json.dumps(payload, indent=1, default=str) + "\n", encoding="utf-8")
        else:
            columns = list(dict.fromkeys(key for row in rows for key in row))
            with path.open("w", newline="", encoding="utf-8") as handle:
                handle.write(f"# query {label}, {ranked.get('direction', '')}, AP {ranked.get('ap')}\n")
                writer = csv.DictWriter(handle, fieldnames=columns)
                writer.writeheader()
                writer.writerows(rows)
        return str(path)

    # ================================================================== attention
    @user_errors
    @gpu(duration=60)
    def attention(self, query: str, match: str, method: str, target: str, direction: str, layer: float = -1,
                  progress=gr.Progress()):
        """/attention: per-frame maps of the query and the match. Returns (query overlays, match overlays,
        per-frame contribution figure, summary)."""
        from lsmrl.analysis.render import frame_contribution_figure

        ex = self.explorer(progress)
        direction = check_direction(direction, ex.directions)
        aliases = {**{label.lower(): value for label, value in METHODS}, **{value: value for _, value in METHODS}}
        method = aliases.get(str(method or "gradcam").lower())
        if method is None:
            raise UserInputError("the method must be one of " + ", ".join(f"{label} ({value})"
                                                                          for label, value in METHODS))
        target = str(target or "match").lower()
        if target not in ("match", "prompt"):
            raise UserInputError("the target must be 'match' (similarity to the match) or 'prompt' (identity prompt)")
        try:
            layer = int(float(layer if layer not in (None, "") else -1))
        except (TypeError, ValueError):
            raise UserInputError(f"the layer must be a block number such as -1 (the last block), "
                                 f"got {layer!r}") from None
        index = self._query_index(ex, query)
        match_index = None
        if target == "match" and str(match or "").strip():
            match_index = self._query_index(ex, match)
        progress(0.1, desc=f"{METHOD_NAMES[method]} on the query")
        try:
            out = ex.attention(index, match_index, target=target, method=method, direction=direction, layer=layer)
        except IndexError as error:
            raise UserInputError(f"{error}; use -1 for the last block") from None

        def frames_gallery(overlay, maps) -> list[tuple[np.ndarray, str]]:
            if overlay is None:
                return []
            shares = maps.frame_contribution
            return [(np.ascontiguousarray(frame), f"frame {i + 1} · {100 * float(shares[i]):.0f}% of the map")
                    for i, frame in enumerate(overlay)]

        q_maps, m_maps = out["query_maps"], out["match_maps"]
        q_row, m_row = out["query"], out["match"]
        figure = frame_contribution_figure(
            q_maps.frame_contribution, m_maps.frame_contribution if m_maps is not None else None,
            names=(f"query {q_row['tid']}", f"match {m_row['tid']}" if m_row else "match"))
        lines = [f"**Query** `{q_row['tid']}` (identity {q_row['pid']}, camera {q_row['camid']}, {q_row['modality']})"]
        if m_row:
            same = "same identity ✓" if m_row["pid"] == q_row["pid"] else "another identity ✗"
            lines.append(f"**Match** `{m_row['tid']}` (identity {m_row['pid']}, camera {m_row['camid']}, "
                         f"{m_row['modality']}; {same})")
        if out.get("prompt"):
            p = out["prompt"]
            who = f"training identity {p['pid']}" if p.get("pid") is not None else f"prompt label {p['prompt_index']}"
            lines.append(f"**Target**: similarity to the identity prompt of {who} (the prompt SD attends to most)")
        elif method != "rollout":
            lines.append("**Target**: the cosine similarity between the query's and the match's embeddings")
        desc = f"**Method**: {METHOD_NAMES[method]}" + (" (target-free)" if method == "rollout" else "")
        if method == "occlusion":
            desc += ": how much the target falls when one patch of one frame is hidden (mean colour)"
        if q_maps.layer is not None:
            desc += f" at block {q_maps.layer + 1} ({q_maps.block_kind or 'basic'})"
        if q_maps.score is not None:
            desc += f"; target score {q_maps.score:.3f}"
        lines.append(desc)
        lines.append("Each frame's map is scaled over the whole tracklet; the bars show each frame's share of it.")
        for name, maps in (("query", q_maps), ("match", m_maps)):
            if maps is None or np.any(np.asarray(maps.raw) > 0):
                continue
            # both keep only positive evidence: an all-zero map is a finding, not a blank
            if maps.method == "gradcam":
                lines.append(f"**No positive {METHOD_NAMES[method]} evidence for the {name}** at this block: every "
                             "weighted activation lowers the target. Try an earlier block, occlusion or attention "
                             "rollout.")
            elif maps.method == "occlusion":
                lines.append(f"**No single patch of the {name} supports the target**: hiding any one of them leaves "
                             "the similarity as high or higher.")
        return (frames_gallery(out["query_overlay"], q_maps), frames_gallery(out["match_overlay"], m_maps), figure,
                "\n\n".join(lines))

    # ================================================================== prompt diffusion
    @user_errors
    def diffusion(self, query: str, top_k: float = 5, progress=gr.Progress()):
        """/diffusion: what SD changes for a tracklet. Returns (summary, prompt similarity figure, SD attention
        figure, attribute probe figure, probe table, raw JSON)."""
        from lsmrl.analysis import probe_figure, prompt_similarity_figure, sd_attention_figure

        ex = self.explorer(progress)
        index = self._query_index(ex, query)
        k = check_top_k(top_k)
        result = ex.diffusion(index, top_k=k)
        report = result.tracklet
        shift = result.cross_modal
        lines = [f"**`{report.tid}`** (identity {report.pid}, {report.modality})"
                 + (f": {report.description}" if report.description else ""),
                 f"SD moves this tracklet's feature by **{100 * report.update_ratio:.1f}%** of its length. "
                 f"{report.note}."]
        if shift:
            lines.append(
                "Over the whole test split, the same-identity cross-modal similarity goes "
                f"{shift.get('same_id_cross_sim_before', float('nan')):.3f} → "
                f"{shift.get('same_id_cross_sim_after', float('nan')):.3f} and the gap to different identities "
                f"{shift.get('gap_before', float('nan')):.3f} → {shift.get('gap_after', float('nan')):.3f} "
                "(before → after SD).")
        payload = result.to_dict()
        summary_rows = payload.get("probe_summary") or []
        table = [[r["probe"], r["modality"], _round(r.get("auc_before"), 3), _round(r.get("auc_after"), 3),
                  _round(r.get("auc_change"), 3), r["num_positive"], r["num_negative"]] for r in summary_rows]
        probes = probe_figure(result.probes) if result.probes else None
        attention = sd_attention_figure(report) if report.attention else None
        if not result.probes:
            lines.append("No attribute probes: this data set has no identity attributes.")
        return ("\n\n".join(lines), prompt_similarity_figure(report), attention, probes,
                table, payload)

    # ================================================================== modality gap
    @user_errors
    def modality_gap(self, stage: str, query: str, direction: str, top_k: float = 5, progress=gr.Progress()):
        """/modality_gap: the stage's UMAP with the query and its matches highlighted, and the gap metrics.
        Returns (UMAP figure, highlighted points table, gap table, gap figure, note)."""
        from lsmrl.analysis import gap_columns, gap_figure
        from lsmrl.analysis.modality_gap import STAGE_LABELS

        ex = self.explorer(progress)
        stage = str(stage or "embedding")
        if stage not in ex.stages:
            raise UserInputError(f"no stage {stage!r} here; choose one of {', '.join(ex.stages)}")
        direction = check_direction(direction, ex.directions)
        k = check_top_k(top_k)
        if not ex.umap_cached():
            progress(0.2, desc="fitting UMAP for every stage (first time only; about 30 s on 2 cores)")
        query = str(query or "").strip() or None
        highlight_rows = []
        note = ""
        if query is not None:
            index = self._query_index(ex, query)
            if ex.dataset.test[index].modality != self._direction_query_modality(ex, direction):
                direction = next((d for d in ex.directions if self._direction_query_modality(ex, d)
                                  == ex.dataset.test[index].modality), direction)
            self._check_query_direction(ex, index, direction)
            figure = ex.umap_figure(stage, index, direction, k)
            result = ex.retrieve(index, direction, k)
            q = result["query"]
            highlight_rows.append(["query ★", q["tid"], q["pid"], q["camid"], q["modality"], None, None])
            for item in result["items"]:
                highlight_rows.append([f"rank {item['rank']}", item["tid"], item["pid"], item["camid"],
                                       item["modality"], round(item["similarity"], 4), bool(item["is_match"])])
            note = (f"Star: query `{q['tid']}`; rings: its top-{k} in the final embedding "
                    "(green = same identity, red = another).")
        else:
            figure = ex.umap_figure(stage)
        rows = ex.gap_table()
        labels = gap_columns(rows)
        keys = [key for key in labels if key != "stage" and any(key in r for r in rows)]
        import pandas as pd

        gap_table = pd.DataFrame([[_round(r.get(key), 4) for key in keys] for r in rows],
                                 columns=[labels[key] for key in keys])
        note = (f"**{STAGE_LABELS.get(stage, stage)}**: colour = modality, marker = identity; hover a point for its "
                f"tracklet. {note}")
        return figure, highlight_rows, gap_table, gap_figure(rows), note

    # ================================================================== failure cases
    @user_errors
    def failures(self, direction: str, sort_by: str = "ap", limit: float = 50, progress=gr.Progress()):
        """/failures: the worst queries first. Returns (table, summary, camera-pair figure, attribute figure,
        similarity histogram figure)."""
        from lsmrl.analysis import attribute_failure_figure, camera_pair_figure, similarity_histogram_figure

        ex = self.explorer(progress)
        direction = check_direction(direction, ex.directions)
        sort_by = str(sort_by or "ap").lower()
        if sort_by not in ("ap", "inp"):
            raise UserInputError("sort by 'ap' or 'inp'")
        try:
            limit = int(float(limit))
        except (TypeError, ValueError):
            raise UserInputError(f"the number of rows must be a whole number, got {limit!r}") from None
        if limit < 1:
            raise UserInputError("show at least one row")
        rows = ex.failures(direction, sort_by, limit)
        records = {o["tid"]: o for o in ex.queries(direction)}
        table = []
        for position, r in enumerate(rows, start=1):
            table.append([position, r["tid"], r["pid"], r["camid"], _round(r["ap"]), _round(r["inp"]),
                          r["first_match_rank"], r["num_matches"], bool(records.get(r["tid"], r)["rank1_correct"])])
        stats = ex.failure_statistics(direction)
        summary = (f"**{DIRECTION_LABELS.get(direction, direction)}**: {stats.num_failures} of {stats.num_valid} "
                   f"valid queries fail at rank 1 ({100 * stats.failure_rate:.1f}%); "
                   f"{stats.num_queries - stats.num_valid} queries have no true match and are skipped. "
                   f"Sorted by {sort_by.upper()}, worst first. Choose a row to load it into Retrieval and Attention "
                   "and to see its impostor beside the true match.")
        histogram = similarity_histogram_figure(stats.histogram) if stats.histogram else None
        attributes = attribute_failure_figure(stats) if stats.by_attribute else None
        return table, summary, camera_pair_figure(stats), attributes, histogram

    @user_errors
    def impostors(self, query: str, direction: str, progress=gr.Progress()):
        """/impostors: the best impostor beside the first true match. Returns (image, summary, impostor table)."""
        from lsmrl.analysis.render import side_by_side, stacked

        ex = self.explorer(progress)
        direction = check_direction(direction, ex.directions)
        index = self._query_index(ex, query)
        report = ex.impostors(index, direction)
        t = ex.dataset.test[index]
        panels = []
        if report.first_match is not None:
            fm = report.first_match
            panels.append(self.strip(ex, fm.test_index, "match", [f"true match, rank {fm.rank}",
                                                                  f"sim {fm.similarity:.3f}  cam {fm.camid}"]))
        if report.best_impostor is not None:
            bi = report.best_impostor
            panels.append(self.strip(ex, bi.test_index, "wrong", [f"impostor, rank {bi.rank}: id {bi.pid}",
                                                                  f"sim {bi.similarity:.3f}  cam {bi.camid}"]))
        image = stacked([self._query_strip(ex, index, scale=1)] + ([side_by_side(panels, gap=16)] if panels else []))
        if report.first_match is None:
            text = f"`{t.tid}` has no true match in the gallery: the metric skips it."
        elif report.margin is not None and report.margin > 0:
            text = (f"`{t.tid}`: **{report.num_impostors} impostor(s)** rank above the first true match (rank "
                    f"{report.first_match.rank}); the best impostor (identity {report.best_impostor.pid}) beats it by "
                    f"{report.margin:.3f} in similarity.")
        else:
            text = f"`{t.tid}`: the top-1 is a true match (no impostor above it)."
            if report.margin is not None:
                text += f" The best wrong identity trails by {-report.margin:.3f}."
        if report.stage_margins:
            text += "\n\nMargin (impostor − true match, cosine) per stage: " + ", ".join(
                f"{stage} {value:+.3f}" for stage, value in report.stage_margins.items())
        rows = []
        for item in report.impostors[:10]:
            diffs = "; ".join(f"{d.get('field')}: {d.get('query')} vs {d.get('other')}"
                              for d in item.attribute_differences[:4]) if item.attribute_differences else ""
            rows.append([item.rank, item.tid, item.pid, item.camid, round(item.similarity, 4), diffs])
        return image, text, rows

    @user_errors
    def select_failure(self, direction: str, selection: dict | None, evt: gr.SelectData):
        """A failure row was chosen: load it into Retrieval (then retrieve) and show its impostor."""
        row = evt.row_value if evt.row_value is not None else None
        if not row or len(row) < 2:
            return (gr.skip(),) * 6
        tid = str(row[1])
        ex = self.explorer()
        direction = check_direction(direction, ex.directions)
        rows = ex.queries(direction)
        selection = dict(selection or app_state.new_selection(direction))
        selection.update(direction=direction, query=tid, upload=None)
        return (selection, gr.update(value=direction), gr.update(value=ALL), gr.update(value=ALL),
                gr.update(choices=[(self._query_label(r), r["tid"]) for r in rows], value=tid),
                f"Loaded `{tid}` into the Retrieval and Attention tabs.")

    # ================================================================== model
    @user_errors
    def model_card(self, model: str = "main", progress=gr.Progress()):
        """/model_card: provenance, config, metrics of every loaded checkpoint and the ablation table.
        Returns (card, config JSON, metrics table, ablation table, ablation source)."""
        ex = self.explorer(progress)
        model = str(model or "main")
        card = ex.model_card(model)
        lines = [f"**{card['role']}**: `{card['checkpoint']}`",
                 f"weights sha256 `{card['weights_sha256'][:16]}…`"
                 + (" (matches the sidecar)" if card.get("sha256_matches") else ""),
                 f"data set `{card['dataset']}` (fingerprint `{card['data_fingerprint']}`), T = "
                 f"{card['test_num_frames']} test frames sampled {card['test_sampling']}, metric {card['metric']}, "
                 f"camera filter {'on' if card['camera_filter'] else 'off'}, re-ranking "
                 f"{'on' if card['reranking'] else 'off'}"]
        if card.get("is_baseline"):
            lines.append("This is the frame-wise CLIP baseline (no grouped/shift blocks, no SD, no CMI).")
        training = card.get("training") or {}
        if training:
            keys = ", ".join(f"{k} {v}" for k, v in list(training.items())[:8] if not isinstance(v, (dict, list)))
            if keys:
                lines.append(f"training: {keys}")
        for warning in card.get("warnings") or []:
            lines.append(f"⚠️ {warning}")
        for note in card.get("notes") or []:
            lines.append(f"- {note}")
        metrics_rows = []
        for role in ("main", "compare", "baseline"):
            try:
                role_card = ex.model_card(role)
            except Exception:  # noqa: BLE001 - not loaded
                continue
            for direction, values in (role_card.get("metrics_now") or {}).items():
                label = DIRECTION_LABELS.get(direction, direction)
                metrics_rows.append([role, Path(role_card["checkpoint"]).stem, label]
                                    + [_round(values.get(key), 2) for key in ("rank1", "rank5", "rank10", "rank20",
                                                                              "mAP", "mINP")])
        ablation, source = app_state.ablation_rows(ex)
        ablation_table = []
        for row in ablation:
            metrics = row.get("metrics") or {}
            cells = [row.get("row", ""), row.get("label", "")]
            for direction in ("infrared_to_visible", "visible_to_infrared"):
                values = metrics.get(direction) or {}
                cells += [_round(values.get("rank1"), 2), _round(values.get("mAP"), 2), _round(values.get("mINP"), 2)]
            ablation_table.append(cells)
        config = {"model_config": card.get("model_config"), "training": training, "data": card.get("data"),
                  "metrics_sidecar": card.get("metrics_sidecar")}
        return "\n\n".join(lines), config, metrics_rows, ablation_table, f"Ablation rows from {source}."

    @user_errors
    def compare(self, other: str, direction: str, progress=gr.Progress()):
        """/compare: per-query AP changes main -> ``other`` ("baseline" or "compare"). Returns (summary,
        AP-change figure, changed top-1 table)."""
        from lsmrl.analysis import ap_change_figure

        ex = self.explorer(progress)
        direction = check_direction(direction, ex.directions)
        other = str(other or "")
        if not other:
            return ("Start the app with `--compare-checkpoint` (or with the demo's baseline) to compare two models "
                    "on the same queries.", None, [])
        comparisons = ex.compare(other)
        if comparisons is None:
            raise UserInputError(f"no {other!r} checkpoint is loaded")
        comparison = comparisons[direction]
        s = comparison.summary
        text = (f"**{comparison.label_a}** (A) vs **{comparison.label_b}** (B), "
                f"{DIRECTION_LABELS.get(direction, direction)}, {s.get('num_queries', 0)} queries: mAP "
                f"{s.get('mAP_a', 0):.1f} → {s.get('mAP_b', 0):.1f}, Rank-1 {s.get('rank1_a', 0):.1f} → "
                f"{s.get('rank1_b', 0):.1f}; {s.get('improved', 0)} queries improve and {s.get('worsened', 0)} get "
                f"worse under B; the top-1 becomes right for {s.get('fixed', 0)} and wrong for {s.get('broken', 0)}.")
        rows = [[c.status, c.tid, c.pid, c.camid, round(c.ap_a, 4), round(c.ap_b, 4), round(c.ap_change, 4),
                 c.first_match_rank_a, c.first_match_rank_b]
                for c in comparison.changes if c.status != "same"]
        rows.sort(key=lambda r: (r[0], r[6]))
        return text, ap_change_figure(comparison), rows

    # ================================================================== tab refresh
    def model_and_compare(self, model: str, other: str, direction: str):
        """The Model tab on opening: the model card, then the comparison."""
        return (*self.model_card(model), *self.compare(other, direction))

    def refresh_if_stale(self, name: str, handler, n_outputs: int, needs_query: bool = False):
        """A tab-select handler: run ``handler`` only if its inputs changed since this session last saw the tab
        (and, with ``needs_query``, only once a query is chosen)."""

        def run(*args):
            *inputs, rendered = args
            rendered = dict(rendered or {})
            key = json.dumps(inputs, default=str)
            if rendered.get(name) == key or (needs_query and not str(inputs[0] or "").strip()):
                return (*([gr.skip()] * n_outputs), rendered)
            outputs = handler(*inputs)
            rendered[name] = key
            return (*outputs, rendered)

        run.__name__ = f"refresh_{name}"
        return run


def timed(fn, *args, repeat: int = 1, **kwargs) -> tuple[Any, list[float]]:
    """``(last result, [seconds per call])`` of ``fn(*args, **kwargs)`` (bench helper)."""
    times = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return result, times


__all__ = ["ALL", "Callbacks", "DIRECTION_LABELS", "METHODS", "METHOD_NAMES", "ORDERS", "TARGETS", "direction_choices", "timed"]
