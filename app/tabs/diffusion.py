"""The Prompt diffusion tab (``/diffusion``): what SD changes for a tracklet, and the attribute probes."""

from __future__ import annotations

import gradio as gr

from app import session as sessions
from app.tabs.shared import TabContext, rounded
from app.validation import check_top_k, user_errors, warn


class DiffusionTab:
    """Handlers of the Prompt diffusion tab."""

    def __init__(self, ctx: TabContext):
        self.ctx = ctx

    def diffusion_ui(self, session: dict | None, query: str, top_k: float = 5, progress=gr.Progress()):
        """The Show button and opening the tab (browser only): the session's current query, or why this view
        does not apply to it; a failure is one titled toast and clears the view."""
        session = session or {}
        empty = (None, None, None, None, None)
        if session.get("kind") == "video":
            return (f"**Prompt diffusion is shown for a test tracklet.** The current query is "
                    f"{sessions.describe(session)}. This view ranks the identity prompts against the tracklet "
                    "before and after SD and marks its own identity's prompt and attributes; an upload's identity "
                    "and attributes are unknown. Pick a test tracklet in the Retrieval tab.", *empty)
        if not str(query or "").strip():
            return ("Pick a query in the Retrieval tab.", *empty)
        try:
            return self.diffusion(query, top_k, progress)
        except Exception as error:  # noqa: BLE001 - shown as a toast; the view is cleared
            return (f"**Could not show `{query}`**: {warn(error)}", *empty)

    @user_errors
    def diffusion(self, query: str, top_k: float = 5, progress=gr.Progress()):
        """/diffusion: what SD changes for a tracklet. Returns (summary, prompt similarity figure, SD attention
        figure, attribute probe figure, probe table, raw JSON)."""
        # plotly loads with the first chart, not at start-up
        from lsmrl.viz.figures import probe_figure, prompt_similarity_figure, sd_attention_figure

        ex = self.ctx.explorer(progress)
        index = self.ctx.query_index(ex, query)
        k = check_top_k(top_k)
        result = ex.diffusion.of(index, top_k=k)
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
        table = [[r["probe"], r["modality"], rounded(r.get("auc_before"), 3), rounded(r.get("auc_after"), 3),
                  rounded(r.get("auc_change"), 3), r["num_positive"], r["num_negative"]] for r in summary_rows]
        probes = probe_figure(result.probes) if result.probes else None
        attention = sd_attention_figure(report) if report.attention else None
        if not result.probes:
            lines.append("No attribute probes: this data set has no identity attributes.")
        return ("\n\n".join(lines), prompt_similarity_figure(report), attention, probes,
                table, payload)


__all__ = ["DiffusionTab"]
