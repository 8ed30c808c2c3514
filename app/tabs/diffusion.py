"""The Prompt diffusion tab (``/diffusion``): what SD changes for a tracklet (its prompts and its ranking of the
gallery with and without SD), and the attribute probes."""

from __future__ import annotations

import gradio as gr

from app import session as sessions
from app.tabs.shared import DIRECTION_LABELS, TabContext, num, rounded
from app.validation import check_top_k, user_errors, warn

#: Columns of the two ranking tables (before SD, after SD).
RANKING_HEADERS = ["rank", "tracklet", "identity", "true match", "similarity"]
RANKING_WIDTHS = ["12%", "28%", "20%", "18%", "22%"]
#: Columns of the listed prompts' table.
PROMPT_HEADERS = ["rank after SD", "rank before SD", "prompt of", "what that identity looks like",
                  "cosine before SD", "cosine after SD", "SD attention"]
PROMPT_WIDTHS = ["9%", "9%", "12%", "35%", "12%", "12%", "11%"]
#: What an identity prompt is, said once above the table of prompts.
PROMPT_NOTE = ("Each identity prompt is *\"a photo of a X X X X person.\"* with the X learned for one training "
               "identity; its words below are that identity's attributes. The list holds the top {k} prompts by "
               "similarity after SD, with each one's rank before SD.")


class DiffusionTab:
    """Handlers of the Prompt diffusion tab."""

    def __init__(self, ctx: TabContext):
        self.ctx = ctx

    def diffusion_ui(self, session: dict | None, query: str, top_k: float = 5, progress=gr.Progress()):
        """The Show button and opening the tab (browser only): the session's current query, or why this view
        does not apply to it; a failure is one titled toast and clears the view. Returns the outputs of
        :meth:`diffusion`, then the ranking line, the rankings before and after SD, and the listed prompts."""
        session = session or {}
        empty = (None,) * 9
        if session.get("kind") == "video":
            return (f"**Prompt diffusion is shown for a test tracklet.** The current query is "
                    f"{sessions.describe(session)}. This view ranks the identity prompts against the tracklet "
                    "before and after SD and marks its own identity's prompt and attributes; an upload's identity "
                    "and attributes are unknown. Pick a test tracklet in the Retrieval tab.", *empty)
        if not str(query or "").strip():
            query = sessions.tracklet_query(session)  # the session is the source of truth (see the gap tab)
        if not query:
            return ("Pick a query in the Retrieval tab.", *empty)
        try:
            return self._view(query, top_k, progress)
        except Exception as error:  # noqa: BLE001 - shown as a toast; the view is cleared
            return (f"**Could not show `{query}`**: {warn(error)}", *empty)

    @user_errors
    def diffusion(self, query: str, top_k: float = 5, progress=gr.Progress()):
        """/diffusion: what SD changes for a tracklet. Returns (summary, prompt similarity figure, SD attention
        figure, attribute probe figure, probe table, raw JSON); the JSON holds the listed prompts
        (``tracklet.listed``) and the query's ranking before and after SD (``ranking``)."""
        return self._view(query, top_k, progress)[:6]

    def _view(self, query: str, top_k: float, progress):
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
                 f"{report.note[:1].upper() + report.note[1:]}."]
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
        ranking_line, before, after = self._ranking(ex, result)
        prompts = [[p.rank_after, p.rank_before, f"identity {p.pid}" if p.pid is not None else
                    f"prompt {p.prompt_index}", p.words or "attributes unknown", round(p.similarity_before, 3),
                    round(p.similarity_after, 3), rounded(p.attention, 3)] for p in report.listed]
        prompt_note = PROMPT_NOTE.format(k=len(report.listed))
        return ("\n\n".join(lines), prompt_similarity_figure(report), attention, probes, table, payload,
                f"{ranking_line}\n\n{prompt_note}", before, after, prompts)

    @staticmethod
    def _ranking(ex, result) -> tuple[str, list, list]:
        """The line that compares the query's first true match before and after SD, and the two top-k tables."""
        ranking = result.ranking
        if ranking is None:
            return f"**Ranking with and without SD**: {result.ranking_note}.", [], []

        def rows(stage) -> list:
            return [[m.rank, m.tid, m.pid, "✓" if m.is_match else "✗", round(m.similarity, 3)] for m in stage.top]

        def first(stage) -> str:
            return f"**{stage.first_match_rank}**" if stage.first_match_rank else "none (no true match)"

        final = ex.retrieve(ranking.query_index, ranking.direction, 1)
        before, after = (stage.first_match_rank or float("inf") for stage in (ranking.before, ranking.after))
        verdict = ("SD moves the first true match up" if after < before else
                   "SD moves the first true match down" if after > before else
                   "SD leaves the first true match where it was")
        line = (f"**Ranking with and without SD** ({DIRECTION_LABELS.get(ranking.direction, ranking.direction)}, "
                f"the same {ranking.gallery_size} gallery items after the camera rule, {ranking.num_matches} true "
                f"match{'es' if ranking.num_matches != 1 else ''}): first true match at rank {first(ranking.before)} "
                f"by the STFL feature (before SD) and {first(ranking.after)} by the after-SD feature; AP "
                f"{num(ranking.before.ap)} → {num(ranking.after.ap)}. {verdict}. For reference, the final "
                f"embedding (after CMI) puts it at rank {final['first_match_rank'] or '—'} (AP {num(final['ap'])}).")
        return line, rows(ranking.before), rows(ranking.after)


__all__ = ["DiffusionTab", "PROMPT_HEADERS", "PROMPT_WIDTHS", "RANKING_HEADERS", "RANKING_WIDTHS"]
