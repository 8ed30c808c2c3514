"""The Retrieval tab: start-up, the query filters, ranking a test tracklet or an uploaded video,
the selected match (a clicked result, or the first true match wherever it ranks), the per-stage panel,
the export (``/retrieve``, ``/retrieve_video``, ``/export_ranking``).

The upload box takes the file; the player beside it shows the file itself when a browser can play it and
an H.264 copy otherwise (:class:`app.tabs.shared.PlayableCopies`), while the query reads the uploaded file."""

from __future__ import annotations

import csv
import dataclasses
import html
import json
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from app import config as app_config
from app import session as sessions
from app.gpu import gpu
from app.tabs.retrieval_panels import ranked_summary, stage_panel, true_match_line
from app.tabs.shared import ALL, DIRECTION_LABELS, TabContext, content_digest, direction_choices, other_modality
from app.validation import (
    UserInputError,
    cap_top_k,
    check_direction,
    check_modality,
    check_person,
    check_top_k,
    read_upload,
    upload_path,
    user_errors,
    warn,
)
from lsmrl.analysis.modality_gap import STAGE_LABELS
from lsmrl.viz.images import tracklet_strip

ORDERS = (("by identity", "identity"), ("hardest first (lowest AP)", "hardest"), ("easiest first", "easiest"))
MAX_THUMBNAILS = 30
#: Frames of an uploaded video searched for people (evenly spaced); the query then samples the model's T of them.
DETECTION_FRAMES = 48
#: Exported rankings kept on the server (each a few kB), newest first.
KEPT_EXPORTS = 64
_EXPORTS_LOCK = threading.Lock()
AUTO_LABEL = "auto (the longest track)"
DISPLAY_HEIGHT = 128  # uploaded frames are resized to this height for the strips


class RetrievalTab:
    """Handlers of the Retrieval tab (see the module docstring)."""

    def __init__(self, ctx: TabContext):
        self.ctx = ctx

    # ================================================================== start-up and the query list
    @user_errors
    def init(self, session: dict | None, progress=gr.Progress()):
        """demo.load: wait for the model, then fill the filters, the query list and the stage choices."""
        ex = self.ctx.explorer(progress)
        session = dict(session or sessions.new_session())
        direction = session.get("direction") if session.get("direction") in ex.directions else ex.directions[0]
        session["direction"] = direction
        identity, camera, query, thumbs, session = self.list_queries(direction, ALL, ALL, "identity", session)
        stages = [(STAGE_LABELS.get(s, s), s) for s in ex.stages]
        others = [(f"the baseline ({Path(ex.baseline.path).stem})", "baseline")] if ex.baseline is not None else []
        if ex.compare_bundle is not None:
            others.insert(0, (f"the compare checkpoint ({Path(ex.compare_bundle.path).stem})", "compare"))
        models = [("main", "main")] + [(o[1], o[1]) for o in reversed(others)]
        return (self.ctx.resources.status_markdown(),
                gr.update(choices=direction_choices(ex.directions), value=direction),
                identity, camera, query, thumbs, session,
                gr.update(choices=stages, value="embedding" if "embedding" in ex.stages else ex.stages[-1]),
                gr.update(choices=others or [("no other checkpoint loaded", "")], value=others[0][1] if others else ""),
                gr.update(choices=models, value="main"))

    @user_errors
    def status(self):
        return self.ctx.resources.status_markdown()

    @staticmethod
    def _chosen(value: Any) -> str | None:
        return None if value in (None, "", ALL) else str(value)

    def _query_rows(self, ex, direction: str, identity: Any, camera: Any, order: str) -> list[dict]:
        rows = ex.queries(direction)
        if self._chosen(identity) is not None:
            rows = [r for r in rows if str(r["pid"]) == str(identity)]
        if self._chosen(camera) is not None:
            rows = [r for r in rows if str(r["camid"]) == str(camera)]
        if order == "hardest":
            rows = sorted(rows, key=lambda r: (r["ap"] is None, r["ap"] if r["ap"] is not None else 0, r["test_index"]))
        elif order == "easiest":
            rows = sorted(rows, key=lambda r: (r["ap"] is None, -(r["ap"] or 0), r["test_index"]))
        return rows

    @user_errors
    def list_queries(self, direction: str, identity: Any, camera: Any, order: str, session: dict | None,
                     progress=gr.Progress(), keep_video: bool = False):
        """Filter the queries of ``direction``: identity and camera dropdowns, the query dropdown, thumbnails.

        The two filters offer only combinations that exist: the cameras listed are those of the chosen
        identity and the identities those seen by the chosen camera. With ``keep_video`` (after a video
        query) no tracklet is chosen: the video stays the query."""
        ex = self.ctx.explorer(progress)
        direction = check_direction(direction, ex.directions)
        all_rows = ex.queries(direction)
        pids = {str(r["pid"]) for r in all_rows}
        identity = str(identity) if str(identity) in pids else ALL
        cams = {str(r["camid"]) for r in all_rows if identity == ALL or str(r["pid"]) == identity}
        camera = str(camera) if str(camera) in cams else ALL
        pids_here = {str(r["pid"]) for r in all_rows if camera == ALL or str(r["camid"]) == camera}
        rows = self._query_rows(ex, direction, identity, camera, order or "identity")
        session = dict(session or sessions.new_session(direction))
        tids = [r["tid"] for r in rows]
        current = session.get("query")
        if current in tids:
            value = current
        elif keep_video and session.get("kind") == "video":
            value = None
        else:
            value = tids[0] if tids else None
        shown = rows[:MAX_THUMBNAILS]
        thumbs = []
        for r in shown:
            frames = self.ctx.frames(ex, r["test_index"])
            ap = "—" if r["ap"] is None else f"{r['ap']:.2f}"
            thumbs.append((self.ctx.image_file(frames[len(frames) // 2]), f"{r['tid']}\nid {r['pid']} · AP {ap}"))
        session.update(direction=direction, thumbnails=[r["tid"] for r in shown])

        def by_number(values):
            return sorted(values, key=lambda v: (not v.lstrip("-").isdigit(), int(v) if v.lstrip("-").isdigit() else 0, v))

        return (gr.update(choices=[(ALL, ALL)] + [(p, p) for p in by_number(pids_here)], value=identity),
                gr.update(choices=[(ALL, ALL)] + [(c, c) for c in by_number(cams)], value=camera),
                gr.update(choices=[(self.ctx.query_label(r), r["tid"]) for r in rows], value=value),
                thumbs, session)

    @user_errors
    def pick_thumbnail(self, session: dict | None, evt: gr.SelectData):
        """A thumbnail was clicked: make it the query (the retrieval runs next)."""
        shown = (session or {}).get("thumbnails") or []
        if evt.index is None or not 0 <= int(evt.index) < len(shown):
            return gr.skip()
        return gr.update(value=shown[int(evt.index)])

    # ================================================================== a test tracklet as the query
    def _default_query(self, ex, direction: str) -> str:
        """The query used when none is given (the API page's default call): the first query of ``direction``."""
        rows = ex.queries(direction)
        if not rows:
            raise UserInputError(f"this data set has no queries for {DIRECTION_LABELS.get(direction, direction)}")
        return rows[0]["tid"]

    @user_errors
    def retrieve(self, query: str | None = None, direction: str = "infrared_to_visible", top_k: float = 10,
                 session: dict | None = None, progress=gr.Progress()):
        """/retrieve: the ranked gallery of a test tracklet (none given: the first query of ``direction``).
        Returns (ranked list JSON, summary, query strip, result strips, session)."""
        ex = self.ctx.explorer(progress)
        direction = check_direction(direction, ex.directions)
        k = check_top_k(top_k)
        if not str(query or "").strip() and session is None:  # an API call with the defaults
            query = self._default_query(ex, direction)
        index = self.ctx.query_index(ex, query)
        self.ctx.check_query_direction(ex, index, direction)
        result = ex.retrieve(index, direction, k)
        result["stages"] = [dataclasses.asdict(s) for s in ex.failure.stage_ranks(index, direction)]
        session = sessions.with_tracklet(session, result, k)
        first = result["first_match"]
        if first is not None:  # the match explained by default: the first true match, wherever it ranks
            session = chosen_match(session, first["tid"], first["rank"])
        return (result, ranked_summary(result), self.ctx.query_strip_file(ex, index),
                self.ctx.result_gallery(ex, result["items"]), session)

    @staticmethod
    def _failed(summary: str, session: dict | None, direction: str | None = None) -> tuple:
        """Retrieval outputs (browser) after a failure: nothing of the previous query is left on show."""
        return None, summary, None, [], sessions.cleared(session, direction), *RetrievalTab._panels(None)

    @staticmethod
    def _panels(result: dict | None) -> tuple:
        """The browser-only outputs under the ranked list: the first-true-match line, its select button (shown
        only when there is a true match) and the per-stage panel; empty for no query or an upload."""
        line = true_match_line(result)
        has_first = bool(result and result.get("first_match"))
        return line, gr.update(visible=has_first), stage_panel(result)

    def retrieve_ui(self, query: str | None, direction: str, top_k: float, session: dict | None,
                    progress=gr.Progress()):
        """The Retrieve button, the query box and the filters (browser only): as :meth:`retrieve`, but a
        failure is one titled toast and clears the results; an empty query list says so."""
        if not str(query or "").strip():
            return self._failed("**No tracklets match** these filters. Set the identity or the camera back to "
                                "*all*.", session, direction)
        try:
            k, note = cap_top_k(top_k)
            out = self.retrieve(query, direction, k, session or sessions.new_session(direction), progress)
        except Exception as error:  # noqa: BLE001 - shown as a toast; the results are cleared
            return self._failed(f"**Could not retrieve `{query}`**: {warn(error)}", session, direction)
        summary = f"ℹ️ {note}\n\n{out[1]}" if note else out[1]
        return (out[0], summary, *out[2:], *self._panels(out[0]))

    # ================================================================== an uploaded video as the query
    def _resize_for_display(self, frames: np.ndarray) -> np.ndarray:
        from PIL import Image

        height, width = frames.shape[1:3]
        if height == DISPLAY_HEIGHT:
            return frames
        new_w = max(1, round(width * DISPLAY_HEIGHT / height))
        return np.stack([np.asarray(Image.fromarray(f).resize((new_w, DISPLAY_HEIGHT), Image.BILINEAR))
                         for f in frames])

    def _tracks(self, digest: str, frames: np.ndarray):
        """The people found in an uploaded clip of content ``digest``, once per clip content (``/detect_people``
        then ``/retrieve_video`` with a person detect once)."""
        # OpenCV loads with the first video query, not at start-up
        from lsmrl.data.people import detect_people

        return self.ctx.track_cache.get((digest, len(frames)), lambda: detect_people(frames))

    @user_errors
    def detect_people(self, video: Any, progress=gr.Progress()):
        """/detect_people: the people in an uploaded video (a scene with several people, say). Returns (the
        tracks as JSON: id, number of frames, first and last scanned frame, boxes, detector score; a preview
        frame with every track's box and numbered marker; the tracks' thumbnails, captioned with the person's
        number, frames, detector score and the appearance warning)."""
        # OpenCV loads with the first video query, not at start-up
        from lsmrl.data.people import preview_frame_index, preview_image

        upload_path(video)
        progress(0.1, desc="decoding the video (in a separate process)")
        frames, info = read_upload(video, DETECTION_FRAMES, self.ctx.limits)
        progress(0.4, desc="finding people (HOG detector and background subtraction)")
        tracks = self._tracks(content_digest(video), frames)
        index = preview_frame_index(tracks, len(frames)) if tracks else len(frames) // 2
        preview = preview_image(frames[index], tracks, frame_index=index)
        rows = [{"id": t.id, "num_frames": t.length, "first_frame": int(t.frame_indices[0]),
                 "last_frame": int(t.frame_indices[-1]), "score": round(float(t.score), 3),
                 "boxes": [[round(float(v), 1) for v in box] for box in t.boxes]} for t in tracks]
        thumbnails = [(self.ctx.image_file(t.thumbnail),
                       f"person {t.id} · frames {t.frame_indices[0] + 1}-{t.frame_indices[-1] + 1} "
                       f"({t.length} of {len(frames)}) · score {t.score:.2f}"
                       + (" · looks like several people" if t.looks_mixed else ""))
                      for t in tracks]
        return {"file": Path(upload_path(video)).name, "frames_scanned": int(len(frames)), "people": rows}, \
            self.ctx.image_file(preview), thumbnails

    def detect_people_ui(self, video: Any, progress=gr.Progress()):
        """The "Find people" button (browser only): also fills the person choice; a failure is one toast."""
        try:
            found, preview, thumbnails = self.detect_people(video, progress)
        except Exception as error:  # noqa: BLE001 - shown as a toast; the preview is cleared
            warn(error)
            return None, None, [], gr.update(choices=[(AUTO_LABEL, "auto")], value="auto")
        people = found["people"]
        choices = [(AUTO_LABEL, "auto")] + [(f"person {p['id']} ({p['num_frames']} frames)", str(p["id"]))
                                            for p in people]
        if not people:
            gr.Warning("<strong>No person found</strong>: no track in this video; a clip that is already a "
                       "person crop is used whole.", title="No person found")
        return found, preview, thumbnails, gr.update(choices=choices, value="auto")

    @user_errors
    @gpu(duration=60)
    def retrieve_video(self, video: Any, modality: str = "infrared", top_k: float = 10, person: Any = "auto",
                       session: dict | None = None, progress=gr.Progress()):
        """/retrieve_video: rank the gallery for an uploaded clip of the declared modality. ``person``: "auto"
        (a clip that is already a person crop is used whole, else the longest track) or a track id from
        /detect_people. Returns (ranked list JSON, summary, the query frames as a strip, result strips,
        session)."""
        # OpenCV loads with the first video query, not at start-up
        from lsmrl.data.people import is_person_crop, person_query
        modality = check_modality(modality)
        k = check_top_k(top_k)
        choice = check_person(person)
        upload_path(video)  # "upload a video first" before waiting for the model
        ex = self.ctx.explorer(progress)
        progress(0.2, desc="decoding the video (in a separate process)")
        frames, info = read_upload(video, DETECTION_FRAMES, self.ctx.limits)
        progress(0.4, desc="finding the person")
        digest = content_digest(video)  # hashed once: the upload may be up to the size limit
        tracks = None if choice == "auto" and not self.ctx.track_cache.has_prefix(digest) \
            else self._tracks(digest, frames)
        # whether the upload is already a person crop: HOG on upscaled frames, asked once per upload content
        is_crop = self.ctx.crop_checks.get(digest, lambda: is_person_crop(frames)) if choice == "auto" else None
        chosen = person_query(frames, person=choice, declared=modality, size=(DISPLAY_HEIGHT, DISPLAY_HEIGHT // 2),
                              tracks=tracks, is_crop=is_crop)
        progress(0.6, desc="embedding and ranking")
        result = ex.uploads.retrieve(chosen.frames, modality, k)
        name = Path(upload_path(video)).name
        person_id = chosen.person.id if chosen.person is not None else None
        result["query"].update(file=name, width=info.width, height=info.height, fps=info.fps,
                               duration_s=info.duration_s, num_frames_in_file=info.num_frames, person=person_id,
                               people_found=len(chosen.tracks), modality_warning=chosen.modality_warning)
        used = ex.uploads.frames_used(chosen.frames)
        shown = self._resize_for_display(used)
        what = f"person {person_id}" if person_id is not None else "the whole clip (a person crop)"
        # a wide strip is shown smaller than its pixels: larger caption text keeps it readable
        strip = tracklet_strip(shown, border="query",
                               label_lines=[f"upload {name}: {what}", f"{modality}, {len(used)} frames sampled evenly"],
                               text_scale=2 if shown.shape[2] * len(shown) > 900 else 1)
        if person_id is not None:
            track = chosen.person
            who = (f"**Person {person_id}** of {len(chosen.tracks)} found (tracked in {track.length} of "
                   f"{len(frames)} scanned frames); the strip shows the crops used, with a 10% margin.")
        else:
            who = "The clip is already a person crop: used whole."
        summary = (f"**Uploaded** `{name}`: {info.num_frames} frames, {info.width}x{info.height}, "
                   f"{info.duration_s:.1f} s. {who} {len(used)} frames sampled evenly; declared **{modality}**, "
                   f"ranked against the {other_modality(modality)} gallery. The identity of an upload is unknown, "
                   "so the strips have no green/red verdict and there is no AP.")
        if chosen.modality_warning:
            summary = f"⚠️ **Check the modality**: {chosen.modality_warning}\n\n" + summary
        # the session follows the video's direction (the declared modality decides it, not the radio)
        session = dict(session or sessions.new_session(result["direction"]), direction=result["direction"])
        return (result, summary, self.ctx.image_file(strip),
                self.ctx.result_gallery(ex, result["items"], verdict=False),
                sessions.with_video(session, result, k, name, modality, person_id))

    def retrieve_video_ui(self, video: Any, modality: str, top_k: float, person: Any, session: dict | None,
                          progress=gr.Progress()):
        """The "Retrieve with the video" button (browser only): a top-k over the maximum is capped with a
        note; a failure is one titled toast and clears the results; a modality that looks wrong is a toast
        too."""
        try:
            k, note = cap_top_k(top_k)
            out = self.retrieve_video(video, modality, k, person, session or sessions.new_session(), progress)
        except Exception as error:  # noqa: BLE001 - shown as a toast; the results are cleared
            return self._failed(f"**Could not use the video**: {warn(error)}", session)
        warning = out[0]["query"].get("modality_warning")
        if warning:
            gr.Warning(f"<strong>Check the modality</strong>: {html.escape(warning)}", title="Check the modality",
                       duration=15)
        summary = f"ℹ️ {note}\n\n{out[1]}" if note else out[1]
        return (out[0], summary, *out[2:], *self._panels(None))

    def show_upload(self, video: Any):
        """A new file in the upload box (browser only): the people found in the previous one no longer apply,
        and the player shows the file, or its H.264 copy when a browser cannot play it (an AVI, say).
        Returns (people JSON, preview, track thumbnails, person choice, player)."""
        cleared = (None, None, [], gr.update(choices=[(AUTO_LABEL, "auto")], value="auto"))
        if video is None:
            return (*cleared, None)
        try:
            copy = self.ctx.playable.copy_for(video)
        except Exception as error:  # noqa: BLE001 - shown as a toast; the query reports the same problem
            warn(error)
            return (*cleared, None)
        return (*cleared, str(copy if copy is not None else upload_path(video)))

    # ================================================================== the match and the other tabs
    @user_errors
    def select_match(self, session: dict | None, evt: gr.SelectData):
        """A result strip was clicked: it becomes the match of the Attention tab."""
        items = (session or {}).get("items") or []
        if evt.index is None or not 0 <= int(evt.index) < len(items):
            return gr.skip()
        return sessions.with_match(session, int(evt.index) + 1)

    @user_errors
    def select_first_match(self, ranked: dict | None, session: dict | None):
        """The "select it as the match" button: the first true match of the whole ranking (which may lie past
        top-k) becomes the match of the Attention tab."""
        first = (ranked or {}).get("first_match")
        if not first or (session or {}).get("kind") != "tracklet" or \
                (ranked.get("query") or {}).get("tid") != session.get("query"):
            return gr.skip()
        return chosen_match(session, first["tid"], int(first["rank"]))

    @staticmethod
    def sync_tabs(session: dict | None):
        """Make every control follow the session's current query: the direction, the query box, the
        selected-match line, and the query, match and direction of the Attention, Prompt diffusion and
        Modality gap tabs (cleared for a video query or after a failure)."""
        session = session or sessions.new_session()
        tracklet = session.get("query") if session.get("kind") == "tracklet" else None
        direction = session.get("direction") or "infrared_to_visible"
        match = session.get("match") if tracklet else None
        # a fresh update dict for each output: gradio consumes them in place
        return (gr.update(value=direction),
                gr.update(value=tracklet) if tracklet or session.get("kind") == "video" else gr.skip(),
                sessions.selected_match_note(session),
                gr.update(value=tracklet or ""), gr.update(value=match or ""), gr.update(value=direction),
                gr.update(value=tracklet or ""), gr.update(value=tracklet or ""), gr.update(value=direction))

    def relist_after_video(self, direction: str, order: str, session: dict | None):
        """After a video query: the query list of the video's direction, with no tracklet chosen."""
        if (session or {}).get("kind") != "video":
            return (gr.skip(),) * 5
        try:
            return self.list_queries(direction, ALL, ALL, order, session, keep_video=True)
        except Exception as error:  # noqa: BLE001
            warn(error)
            return (gr.skip(),) * 5

    # ================================================================== export
    def _ranking_of(self, query: str, top_k: int = 10) -> dict:
        """The /retrieve result of test tracklet ``query`` in the direction whose queries are of its modality."""
        ex = self.ctx.explorer()
        index = self.ctx.query_index(ex, query)
        direction = ex.direction_of(index)
        if direction is None:
            raise UserInputError(f"{query} is not a query of any direction")
        self.ctx.check_query_direction(ex, index, direction)
        return ex.retrieve(index, direction, top_k)

    @user_errors
    def export_ranking(self, ranked: Any, fmt: str = "csv"):
        """/export_ranking: the ranked list (the JSON of /retrieve or /retrieve_video) as a CSV or JSON file.
        Rows hold tracklet ids and frame paths relative to the data set's folder, never server paths."""
        if isinstance(ranked, str) and ranked.strip() and not ranked.strip().startswith(("{", "[")):
            ranked = self._ranking_of(ranked.strip())  # a tracklet id: its top-10 (the API page's default)
        elif isinstance(ranked, str):
            try:
                ranked = json.loads(ranked)
            except ValueError:
                raise UserInputError("the ranked list is not valid JSON; run a retrieval first") from None
        if not isinstance(ranked, dict) or not ranked.get("items"):
            raise UserInputError("run a retrieval first: there is no ranked list to export")
        fmt = str(fmt or "csv").lower()
        if fmt not in ("csv", "json"):
            raise UserInputError(f"export format must be csv or json, got {fmt!r}")
        ex = self.ctx.resources.explorer() if self.ctx.resources.ready else None
        query = dict(ranked.get("query") or {})
        rows = []
        for item in ranked["items"]:
            row = {key: item.get(key) for key in ("rank", "tid", "pid", "camid", "modality", "similarity", "distance",
                                                  "is_match")}
            if ex is not None and item.get("test_index") is not None:
                row["frames"] = ex.tracklet_source(int(item["test_index"]))
            rows.append(row)
        if ex is not None and query.get("test_index") is not None:
            query["frames"] = ex.tracklet_source(int(query["test_index"]))
        query.pop("test_index", None)
        out_dir = new_export_folder(app_config.app_temp_dir() / "exports")
        label = str(query.get("tid") or query.get("file") or "upload").replace("/", "-")
        path = out_dir / f"ranking-{label}-{ranked.get('direction', '')}.{fmt}"
        if fmt == "json":
            payload = {key: ranked.get(key) for key in ("direction", "metric", "model", "ap", "inp",
                                                        "first_match_rank", "num_matches", "note") if key in ranked}
            payload["query"] = query
            payload["items"] = rows
            path.write_text(json.dumps(payload, indent=1, default=str) + "\n", encoding="utf-8")
        else:
            columns = list(dict.fromkeys(key for row in rows for key in row))
            with path.open("w", newline="", encoding="utf-8") as handle:
                handle.write(f"# query {label}, {DIRECTION_LABELS.get(ranked.get('direction'), '')}, "
                             f"AP {ranked.get('ap')}\n")
                writer = csv.DictWriter(handle, fieldnames=columns)
                writer.writeheader()
                writer.writerows(rows)
        return str(path)


def chosen_match(session: dict, tid: str, rank: int) -> dict:
    """The session with gallery tracklet ``tid`` (at ``rank`` of the whole ranking) as the match the Attention
    tab explains; :func:`app.session.with_match` picks among the shown results only, and the first true match
    may rank below them."""
    return dict(session, match=str(tid), match_rank=int(rank))


def new_export_folder(root: Path, keep: int = KEPT_EXPORTS) -> Path:
    """A fresh folder for one export under ``root``; the oldest are removed so that at most ``keep`` remain
    (Gradio's hourly cache clean-up only removes files older than two hours: this bounds the folder between).
    Safe under concurrent exports: one prunes at a time, and a folder that another removed is skipped."""
    root.mkdir(parents=True, exist_ok=True)
    with _EXPORTS_LOCK:
        aged = []
        for folder in root.iterdir():
            try:
                if folder.is_dir():
                    aged.append((folder.stat().st_mtime, folder))
            except OSError:  # removed meanwhile
                continue
        for _, old in sorted(aged)[: max(0, len(aged) - keep + 1)]:
            shutil.rmtree(old, ignore_errors=True)
        out = root / uuid.uuid4().hex[:12]
        out.mkdir()
    return out


__all__ = ["KEPT_EXPORTS", "ORDERS", "RetrievalTab", "chosen_match", "new_export_folder"]
