"""The Modality gap tab (``/modality_gap``): the per-stage UMAP with the query highlighted, and the gap metrics."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from app import session as sessions
from app.tabs.shared import TabContext, rounded
from app.validation import UserInputError, check_direction, check_top_k, user_errors, warn
from lsmrl.analysis import gap_columns
from lsmrl.analysis.modality_gap import STAGE_LABELS, gap_findings, gap_legend, umap_caveat


class GapTab:
    """Handlers of the Modality gap tab."""

    def __init__(self, ctx: TabContext):
        self.ctx = ctx

    def modality_gap_ui(self, session: dict | None, stage: str, query: str, direction: str, top_k: float = 5,
                        colour_by: str = "modality", progress=gr.Progress()):
        """The Show button, the stage choice and opening the tab (browser only): the UMAP with the session's
        query highlighted; a video query is not in the layout, and the note says so."""
        session = session or {}
        video = session.get("kind") == "video"
        if not str(query or "").strip() and sessions.tracklet_query(session):
            # the session is the one source of truth for the query: a tab opened before its query box was
            # synced still highlights the current query
            query, direction = sessions.tracklet_query(session), session.get("direction") or direction
        try:
            out = self.modality_gap(stage, "" if video else query, direction, top_k, colour_by, progress)
        except Exception as error:  # noqa: BLE001 - shown as a toast; the view is cleared
            return None, None, None, None, f"**Could not show the modality gap**: {warn(error)}"
        if video:
            out = (*out[:-1], out[-1] + f" The current query, {sessions.describe(session)}, is not highlighted: "
                   "the layouts are fitted on the test split's features, and an upload is not part of them.")
        return out

    @user_errors
    def modality_gap(self, stage: str = "embedding", query: str | None = None, direction: str = "infrared_to_visible",
                     top_k: float = 5, colour_by: str = "modality", progress=gr.Progress()):
        """/modality_gap: the stage's UMAP with the query and its matches highlighted, and the gap metrics.
        ``colour_by``: "modality" or "identity" (the query's and its matches' identities get a legend).
        Returns (UMAP figure, highlighted points table, gap table, gap figure, note with the column legend)."""
        # plotly loads with the first chart, not at start-up
        from lsmrl.viz.figures import gap_figure, umap_view_figure

        ex = self.ctx.explorer(progress)
        stage = str(stage or "embedding")
        if stage not in ex.stages:
            raise UserInputError(f"no stage {stage!r} here; choose one of {', '.join(ex.stages)}")
        direction = check_direction(direction, ex.directions)
        k = check_top_k(top_k)
        colour_by = str(colour_by or "modality").lower()
        if colour_by not in ("modality", "identity"):
            raise UserInputError(f"colour the UMAP by 'modality' or 'identity', got {colour_by!r}")
        if not ex.umap_cached():
            progress(0.2, desc="fitting UMAP for every stage (first time only; about 30 s on 2 cores)")
        query = str(query or "").strip() or None
        highlight_rows = []
        note = ""
        if query is not None:
            index = self.ctx.query_index(ex, query)
            if ex.tracklet_row(index)["modality"] != ex.query_modality(direction):
                direction = ex.direction_of(index) or direction
            self.ctx.check_query_direction(ex, index, direction)
            figure = umap_view_figure(ex.gap.view(stage, index, direction, k), colour_by=colour_by)
            result = ex.retrieve(index, direction, k)
            q = result["query"]
            highlight_rows.append(["query ★", q["tid"], q["pid"], q["camid"], q["modality"], None, None])
            for item in result["items"]:
                highlight_rows.append([f"rank {item['rank']}", item["tid"], item["pid"], item["camid"],
                                       item["modality"], round(item["similarity"], 4), bool(item["is_match"])])
            note = (f"Star: query `{q['tid']}`; rings: its top-{k} in the final embedding "
                    "(green = same identity, red = another).")
        else:
            figure = umap_view_figure(ex.gap.view(stage), colour_by=colour_by)
        rows = ex.gap.table()
        gap_table = gap_dataframe(rows)
        look = ("colour = modality" if colour_by == "modality" else
                "colour = identity (legend: the query's and its matches' identities), circle = visible, "
                "diamond = infrared")
        legend = "; ".join(f"**{label}**: {text}" for label, text in gap_legend(rows))
        row = next((r for r in rows if r["stage"] == stage), None)
        caveat = umap_caveat(row) if row is not None else ""
        findings = "\n".join(f"- {sentence}" for sentence in gap_findings(rows))
        note = (f"**{STAGE_LABELS.get(stage, stage)}**: {look}; hover a point for its tracklet. {note} {caveat}\n\n"
                f"**What the gap table says**\n\n{findings}\n\nGap table columns: {legend}. The baseline row is the "
                "baseline checkpoint's retrieval feature, the one the Model tab's metrics rank with.")
        return figure, highlight_rows, gap_table, gap_figure(rows), note


def gap_column_widths(num_directions: int) -> list[str]:
    """Widths of the gap table's columns (the stage label, 7 geometry columns, R1 and mAP per direction): the
    label gets a fixed share and the numbers split the rest, so that every column fits at 900 px."""
    numbers = 7 + 2 * num_directions
    return ["18%"] + [f"{82 / numbers:.2f}%"] * numbers


def gap_dataframe(rows: list[dict]):
    """The gap table as shown: 3 decimals for the geometry (as the sentences under it write them), 1 for the
    retrieval percentages, the collapse check as words; the constant probe chance is left to the legend."""
    labels = gap_columns(rows)
    keys = [key for key in labels if key not in ("stage", "probe_chance") and any(key in r for r in rows)]

    def cell(row: dict, key: str):
        value = row.get(key)
        if key == "label":
            return value
        if key == "cosine_spread":
            return None if value is None else f"{value:.3f}" + (" ⚠ collapsed" if row.get("collapsed") else " ok")
        digits = 1 if key.startswith(("rank1_", "mAP_")) else 3
        return rounded(value, digits)

    return pd.DataFrame([[cell(r, key) for key in keys] for r in rows], columns=[labels[key] for key in keys])


__all__ = ["GapTab", "gap_column_widths", "gap_dataframe"]
