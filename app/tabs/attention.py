"""The Attention tab (``/attention``): per-frame explanation maps of a query and its match.

The match is any tracklet of the direction's gallery, typed or picked (a clicked result, or the first true
match named under the ranked list); left empty it is the query's first true match (the top-1 when the
gallery holds none), so a failure is explained against the identity it should have found."""

from __future__ import annotations

import gradio as gr
import numpy as np

from app import session as sessions
from app.gpu import gpu
from app.tabs.shared import TabContext, direction_label
from app.validation import UserInputError, check_direction, user_errors, warn
from lsmrl.viz.images import overlay

METHODS = (("Grad-CAM", "gradcam"), ("HiResCAM", "hirescam"), ("occlusion", "occlusion"),
           ("attention rollout", "rollout"))
METHOD_NAMES = {value: label for label, value in METHODS}
TARGETS = (("similarity to the match", "match"), ("identity prompt", "prompt"))


class AttentionTab:
    """Handlers of the Attention tab."""

    def __init__(self, ctx: TabContext):
        self.ctx = ctx

    def attention_ui(self, session: dict | None, query: str, match: str, method: str, target: str, direction: str,
                     layer: float = -1, progress=gr.Progress()):
        """The Explain button and opening the tab (browser only): the current query of the session, or why
        there is nothing to explain; a failure is one titled toast and clears the maps."""
        session = session or {}
        if session.get("kind") == "video":
            return ([], [], None, f"**Attention maps explain a test tracklet.** The current query is "
                    f"{sessions.describe(session)}: the maps need the query's stored frames and embedding, and an "
                    "upload's identity is unknown, so there is no true match to explain it against. Pick a test "
                    "tracklet in the Retrieval tab.")
        if not str(query or "").strip() and sessions.tracklet_query(session):
            # the session is the source of truth: a tab opened before its inputs were synced explains its query
            query, match = sessions.tracklet_query(session), session.get("match") or ""
            direction = session.get("direction") or direction
        if not str(query or "").strip():
            return [], [], None, "Pick a query in the Retrieval tab (and click a result to choose the match)."
        try:
            return self.attention(query, match, method, target, direction, layer, progress)
        except Exception as error:  # noqa: BLE001 - shown as a toast; the maps are cleared
            return [], [], None, f"**Could not explain `{query}`**: {warn(error)}"

    @user_errors
    @gpu(duration=60)
    def attention(self, query: str, match: str, method: str, target: str, direction: str, layer: float = -1,
                  progress=gr.Progress()):
        """/attention: per-frame maps of the query and the match. Returns (query overlays, match overlays,
        per-frame contribution figure, summary)."""
        # plotly loads with the first chart, not at start-up
        from lsmrl.viz.figures import frame_contribution_figure
        ex = self.ctx.explorer(progress)
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
        index = self.ctx.query_index(ex, query)
        self.ctx.check_query_direction(ex, index, direction)
        match_index = match_note = None
        if target == "match":
            match_index, match_note = self._match(ex, index, match, direction)
        progress(0.1, desc=f"{METHOD_NAMES[method]} on the query")
        try:
            out = ex.attention.explain(index, match_index, target=target, method=method, direction=direction, layer=layer)
        except IndexError as error:
            raise UserInputError(f"{error}; use -1 for the last block") from None

        def frames_gallery(frames, maps) -> list[tuple[np.ndarray, str]]:
            if frames is None:
                return []
            shares = maps.frame_contribution
            # drawn at the frames' own resolution (the maps are upsampled), not at the model's input size
            return [(self.ctx.image_file(frame), f"frame {i + 1} · {100 * float(shares[i]):.0f}% of the map")
                    for i, frame in enumerate(overlay(frames, maps.maps))]

        q_maps, m_maps = out["query_maps"], out["match_maps"]
        q_row, m_row = out["query"], out["match"]
        figure = frame_contribution_figure(
            q_maps.frame_contribution, m_maps.frame_contribution if m_maps is not None else None,
            names=(f"query {q_row['tid']}", f"match {m_row['tid']}" if m_row else "match"))
        lines = [f"**Query** `{q_row['tid']}` (identity {q_row['pid']}, camera {q_row['camid']}, {q_row['modality']})"]
        if m_row:
            same = "same identity ✓" if m_row["pid"] == q_row["pid"] else "another identity ✗"
            lines.append(f"**Match** `{m_row['tid']}` (identity {m_row['pid']}, camera {m_row['camid']}, "
                         f"{m_row['modality']}; {same}){match_note or ''}")
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
        return (frames_gallery(out["query_frames"], q_maps), frames_gallery(out["match_frames"], m_maps), figure,
                "\n\n".join(lines))

    def _match(self, ex, index: int, match: str | None, direction: str) -> tuple[int, str]:
        """The gallery tracklet to explain ``index`` against, and a note on how it ranks: a typed id must be in
        the gallery of ``direction``; none typed: the first true match of the whole ranking (the top-1 when
        the gallery holds no true match)."""
        text = str(match or "").strip()
        if not text:
            ranked = ex.retrieve(index, direction, 1)
            first = ranked["first_match"]
            if first is None:
                top = ranked["items"][0]
                return top["test_index"], " · the top-1: this gallery holds no true match of the query"
            return first["test_index"], f" · the first true match, rank {first['rank']} of {ranked['gallery_size']}"
        match_index = self.ctx.query_index(ex, text)
        if not ex.is_gallery(match_index, direction):
            row = ex.tracklet_row(match_index)
            wanted = "visible" if ex.query_modality(direction) == "infrared" else "infrared"
            article = "an" if row["modality"][0] in "aeiou" else "a"
            raise UserInputError(f"{row['tid']} is not in the gallery of {direction_label(direction)} (it is "
                                 f"{article} {row['modality']} tracklet of identity {row['pid']}); type a {wanted} "
                                 "gallery tracklet id, or leave the match empty for the first true match")
        return match_index, ""


__all__ = ["AttentionTab", "METHODS", "METHOD_NAMES", "TARGETS"]
