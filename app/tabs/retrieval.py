"""The Retrieval tab: start-up, the query filters, ranking a test tracklet or an uploaded video,
the selected match, the export (``/retrieve``, ``/retrieve_video``, ``/export_ranking``)."""

from __future__ import annotations

import csv
import json
import uuid
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from app import state as app_state
from app.gpu import gpu
from app.tabs.shared import (ALL, DIRECTION_LABELS, TabContext, direction_choices, num, other_modality)
from app.validation import UserInputError, check_direction, check_modality, check_top_k, read_upload, upload_path, user_errors

ORDERS = (("by identity", "identity"), ("hardest first (lowest AP)", "hardest"), ("easiest first", "easiest"))
MAX_THUMBNAILS = 30
DISPLAY_HEIGHT = 128  # uploaded frames are resized to this height for the strips


class RetrievalTab:
    """Handlers of the Retrieval tab (see the module docstring)."""

    def __init__(self, ctx: TabContext):
        self.ctx = ctx

    @user_errors
    def init(self, selection: dict | None, progress=gr.Progress()):
        """demo.load: wait for the model, then fill the filters, the query list and the stage choices."""
        ex = self.ctx.explorer(progress)
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
        return (self.ctx.resources.status_markdown(),
                gr.update(choices=direction_choices(ex.directions), value=direction),
                identity, camera, query, thumbs, selection,
                gr.update(choices=stages, value="embedding" if "embedding" in ex.stages else ex.stages[-1]),
                gr.update(choices=others or [("no other checkpoint loaded", "")], value=others[0][1] if others else ""),
                gr.update(choices=models, value="main"))

    @user_errors
    def status(self):
        return self.ctx.resources.status_markdown()

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

    @user_errors
    def list_queries(self, direction: str, identity: Any, camera: Any, order: str, selection: dict | None,
                     progress=gr.Progress()):
        """Filter the queries of ``direction``: identity and camera dropdowns, the query dropdown, thumbnails."""
        ex = self.ctx.explorer(progress)
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
            frames = self.ctx.frames(ex, r["test_index"])
            ap = "—" if r["ap"] is None else f"{r['ap']:.2f}"
            thumbs.append((frames[len(frames) // 2], f"{r['tid']} · id {r['pid']} · cam {r['camid']} · AP {ap}"))
        selection.update(direction=direction, thumbnails=[r["tid"] for r in shown])
        return (gr.update(choices=[(ALL, ALL)] + [(str(p), str(p)) for p in pids], value=str(identity or ALL)),
                gr.update(choices=[(ALL, ALL)] + [(str(c), str(c)) for c in cams], value=str(camera or ALL)),
                gr.update(choices=[(self.ctx.query_label(r), r["tid"]) for r in rows], value=value),
                thumbs, selection)

    @user_errors
    def pick_thumbnail(self, selection: dict | None, evt: gr.SelectData):
        """A thumbnail was clicked: make it the query (the retrieval runs next)."""
        shown = (selection or {}).get("thumbnails") or []
        if evt.index is None or not 0 <= int(evt.index) < len(shown):
            return gr.skip()
        return gr.update(value=shown[int(evt.index)])

    def _ranked_summary(self, result: dict) -> str:
        q = result["query"]
        head = (f"**Query** `{q['tid']}`: identity {q['pid']}, camera {q['camid']}, {q['modality']}, "
                f"ranked against the {other_modality(q['modality'])} gallery "
                f"({DIRECTION_LABELS.get(result['direction'], result['direction'])}).")
        if result.get("first_match_rank") is None:
            return head + ("\n\nNo true match is left in the gallery after the camera rule, so the metric skips "
                           "this query (no AP).")
        top = result["items"][0] if result["items"] else None
        verdict = ("the top-1 is a true match" if top and top["is_match"] else
                   f"the top-1 is identity {top['pid']} (wrong)" if top else "")
        return (head + f"\n\n**AP** {num(result['ap'])} · **INP** {num(result['inp'])} · "
                f"**first true match at rank {result['first_match_rank']}** of "
                f"{result['num_matches']} true matches; {verdict}.")

    @user_errors
    def retrieve(self, query: str, direction: str, top_k: float, selection: dict | None = None,
                 progress=gr.Progress()):
        """/retrieve: the ranked gallery of a test tracklet. Returns (ranked list JSON, summary, query strip,
        result strips, selection)."""
        ex = self.ctx.explorer(progress)
        direction = check_direction(direction, ex.directions)
        k = check_top_k(top_k)
        index = self.ctx.query_index(ex, query)
        self.ctx.check_query_direction(ex, index, direction)
        result = ex.retrieve(index, direction, k)
        selection = dict(selection or app_state.new_selection(direction))
        selection.update(direction=direction, query=result["query"]["tid"], top_k=k, upload=None,
                         items=[item["tid"] for item in result["items"]],
                         match=result["items"][0]["tid"] if result["items"] else None)
        return (result, self._ranked_summary(result), self.ctx.query_strip_file(ex, index),
                self.ctx.result_gallery(ex, result["items"]), selection)

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
        ex = self.ctx.explorer(progress)
        progress(0.2, desc="decoding the video (in a separate process)")
        frames, info = read_upload(video, ex.num_frames, self.ctx.limits)
        progress(0.6, desc="embedding and ranking")
        result = ex.uploads.retrieve(frames, modality, k)
        name = Path(upload_path(video)).name
        result["query"].update(file=name, width=info.width, height=info.height, fps=info.fps,
                               duration_s=info.duration_s, num_frames_in_file=info.num_frames)
        strip = tracklet_strip(self._resize_for_display(frames), border="query",
                               label_lines=[f"upload {name}", f"{modality}, {len(frames)} frames sampled evenly"])
        summary = (f"**Uploaded** `{name}`: {info.num_frames} frames, {info.width}x{info.height}, "
                   f"{info.duration_s:.1f} s; {len(frames)} frames sampled evenly; declared **{modality}**, ranked "
                   f"against the {other_modality(modality)} gallery. The identity of an upload is unknown, so the "
                   "strips have no green/red verdict and there is no AP.")
        selection = dict(selection or app_state.new_selection(result["direction"]))
        selection.update(upload=name, items=[item["tid"] for item in result["items"]], top_k=k,
                         match=result["items"][0]["tid"] if result["items"] else None)
        return result, summary, strip, self.ctx.result_gallery(ex, result["items"], verdict=False), selection

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
        ex = self.ctx.resources.explorer() if self.ctx.resources.ready else None
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


__all__ = ["ORDERS", "RetrievalTab"]
