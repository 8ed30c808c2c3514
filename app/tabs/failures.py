"""The Failure cases tab (``/failures``, ``/impostors``): the worst queries, failure rates, impostors."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from app import session as sessions
from app.tabs.shared import ALL, DIRECTION_LABELS, TabContext, rounded
from app.validation import UserInputError, check_direction, user_errors
from lsmrl.analysis.failure_stats import FailureCount, wilson_interval
from lsmrl.viz.images import side_by_side, stacked


class FailuresTab:
    """Handlers of the Failure cases tab."""

    def __init__(self, ctx: TabContext):
        self.ctx = ctx

    @user_errors
    def failures(self, direction: str, sort_by: str = "ap", limit: float = 50, progress=gr.Progress()):
        """/failures: the worst queries first. Returns (table, summary, camera-pair figure, attribute figure,
        similarity histogram figure)."""
        # plotly loads with the first chart, not at start-up
        from lsmrl.viz.figures import attribute_failure_figure, camera_pair_figure, similarity_histogram_figure

        ex = self.ctx.explorer(progress)
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
        rows = ex.failure.worst(direction, sort_by, limit)
        records = {o["tid"]: o for o in ex.queries(direction)}
        table = []
        for position, r in enumerate(rows, start=1):
            table.append([position, r["tid"], r["pid"], r["camid"], rounded(r["ap"]), rounded(r["inp"]),
                          r["first_match_rank"], r["num_matches"], bool(records.get(r["tid"], r)["rank1_correct"])])
        stats = ex.failure.statistics(direction)
        low, high = wilson_interval(stats.num_failures, stats.num_valid)
        summary = (f"**{DIRECTION_LABELS.get(direction, direction)}**: {stats.num_failures} of {stats.num_valid} "
                   f"valid queries fail at rank 1 ({100 * stats.failure_rate:.1f}%, 95% Wilson interval "
                   f"{100 * low:.1f}-{100 * high:.1f}%); "
                   f"{stats.num_queries - stats.num_valid} queries have no true match and are skipped. "
                   f"Sorted by {sort_by.upper()}, worst first. Choose a row to load it into Retrieval and Attention "
                   "and to see its impostor beside the true match.")
        if any(r.get("same_camera_excluded") for r in stats.by_camera_pair):
            summary += ("\n\nCamera pairs: the cells marked ✕ (top-1 from the query's own camera) fail by "
                        "construction: the protocol removes the query identity's gallery items of that camera, so "
                        "such a top-1 is always another identity. They are counted but not coloured.")
        histogram = similarity_histogram_figure(stats.histogram) if stats.histogram else None
        attributes = attribute_failure_figure(stats) if stats.by_attribute else None
        return table, summary, camera_pair_figure(stats), attributes, histogram

    @user_errors
    def by_identity(self, progress=gr.Progress()):
        """/failures_by_identity: each identity's Rank-1 failures in both directions and in all, worst first.
        Returns (table, caption)."""
        ex = self.ctx.explorer(progress)
        rows = ex.failure.by_identity()
        table = []
        for row in rows:
            cells = [row.pid]
            for count in [row.by_direction.get(d) for d in ex.directions] + [row.total]:
                cells += [f"{count.num_failures}/{count.num_queries}", failure_rate_text(count)] if count else \
                    ["0/0", "no valid query"]
            table.append(cells)
        worst = [r for r in rows if r.total.num_failures == r.total.num_queries]
        caption = (f"**Rank-1 failures per identity** ({len(rows)} identities with a valid query), worst first by "
                   "the rate over both directions; the interval is the 95% Wilson interval, wide for few queries. "
                   f"{len(worst)} identit{'y fails' if len(worst) == 1 else 'ies fail'} every one of its queries.")
        return pd.DataFrame(table, columns=identity_headers(ex.directions)), caption

    @user_errors
    def impostors(self, query: str, direction: str, progress=gr.Progress()):
        """/impostors: the best impostor beside the first true match. Returns (image, summary, impostor table)."""
        ex = self.ctx.explorer(progress)
        direction = check_direction(direction, ex.directions)
        index = self.ctx.query_index(ex, query)
        report = ex.failure.impostors(index, direction)
        tid = ex.tracklet_row(index)["tid"]
        panels = []
        if report.first_match is not None:
            fm = report.first_match
            panels.append(self.ctx.strip(ex, fm.test_index, "match", [f"true match, rank {fm.rank}",
                                                                  f"sim {fm.similarity:.3f}  cam {fm.camid}"]))
        if report.best_impostor is not None:
            bi = report.best_impostor
            panels.append(self.ctx.strip(ex, bi.test_index, "wrong", [f"impostor, rank {bi.rank}: id {bi.pid}",
                                                                  f"sim {bi.similarity:.3f}  cam {bi.camid}"]))
        image = stacked([self.ctx.query_strip(ex, index, scale=1)] + ([side_by_side(panels, gap=16)] if panels else []))
        if report.first_match is None:
            text = f"`{tid}` has no true match in the gallery: the metric skips it."
        elif report.margin is not None and report.margin > 0:
            text = (f"`{tid}`: **{report.num_impostors} impostor(s)** rank above the first true match (rank "
                    f"{report.first_match.rank}); the best impostor (identity {report.best_impostor.pid}) beats it by "
                    f"{report.margin:.3f} in similarity.")
        else:
            text = f"`{tid}`: the top-1 is a true match (no impostor above it)."
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
        return self.ctx.image_file(image), text, rows

    @user_errors
    def select_failure(self, direction: str, selection: dict | None, evt: gr.SelectData):
        """A failure row was chosen: load it into Retrieval (then retrieve) and show its impostor."""
        row = evt.row_value if evt.row_value is not None else None
        if not row or len(row) < 2:
            return (gr.skip(),) * 6
        tid = str(row[1])
        ex = self.ctx.explorer()
        direction = check_direction(direction, ex.directions)
        rows = ex.queries(direction)
        # the query box gets the row's tracklet and the retrieval that follows makes it the session's query
        selection = dict(selection or sessions.new_session(direction), direction=direction)
        return (selection, gr.update(value=direction), gr.update(value=ALL), gr.update(value=ALL),
                gr.update(choices=[(self.ctx.query_label(r), r["tid"]) for r in rows], value=tid),
                f"Loaded `{tid}` into the Retrieval and Attention tabs.")


#: Browser-side script for the Modality gap and Failure cases tabs, run once at page load. (1) Plots refit when
#: their size changes, e.g. when their tab is shown again after a window resize (plotly skips hidden plots).
#: (2) A table of the failures tab that a column filter (the header menu) empties gets a line saying so and a
#: button that clears the filter, instead of a bare header.
TABLE_AND_PLOT_JS = """
() => {
  const TABLES = ["lsmrl-failures-table", "lsmrl-fail-identities", "lsmrl-impostors"];
  const PLOTS = "#tab-gap .js-plotly-plot, #tab-failures .js-plotly-plot";
  const refit = new ResizeObserver((entries) => {
    for (const entry of entries) {
      const plot = entry.target;
      if (entry.contentRect.width > 0 && plot._responsiveChartHandler) plot._responsiveChartHandler();
    }
  });
  function clearFilters(box) {
    // after this click has finished bubbling (the table closes its menu on any click outside it): open the
    // filtered column's menu, then choose "Clear filters" once the menu is there
    setTimeout(() => {
      const header = box.querySelector(".filter-indicator")?.closest("th");
      header?.querySelector("button[aria-label='Open cell menu']")?.click();
      let tries = 0;
      const choose = () => {
        const item = Array.from(document.querySelectorAll("[role=menuitem]"))
          .find((b) => b.textContent.trim() === "Clear filters");
        if (item) item.click();
        else if (tries++ < 40) setTimeout(choose, 50);
      };
      choose();
    }, 0);
  }
  function check() {
    document.querySelectorAll(PLOTS).forEach((plot) => {
      if (!plot.dataset.lsmrlRefit) { plot.dataset.lsmrlRefit = "1"; refit.observe(plot); }
    });
    for (const id of TABLES) {
      const box = document.getElementById(id);
      if (!box) continue;
      const filtered = Array.from(box.querySelectorAll(".filter-indicator")).map((f) => f.closest("th")?.title || "");
      const empty = !box.querySelector("[data-testid^='cell-']");
      let note = box.querySelector(".lsmrl-filter-note");
      if (filtered.length && empty) {
        if (note) continue;
        note = document.createElement("div");
        note.className = "lsmrl-filter-note";
        note.setAttribute("role", "status");
        note.style.cssText = "padding: 8px 12px; border-left: 4px solid #c62828; margin: 6px 0;";
        note.append(`No row matches the column filter on ${filtered.join(", ")}: the rows are still there. `);
        const button = document.createElement("button");
        button.textContent = "Clear the filter";
        button.className = "lsmrl-clear-filter";
        button.style.cssText = "text-decoration: underline; font-weight: 600; cursor: pointer;";
        button.addEventListener("click", () => clearFilters(box));
        note.append(button);
        box.append(note);
      } else if (note) {
        note.remove();
      }
    }
  }
  let pending = false;
  new MutationObserver(() => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; check(); });
  }).observe(document.body, { childList: true, subtree: true });
  check();
}
"""


#: Direction names short enough for the per-identity table's headers.
SHORT_DIRECTIONS = {"infrared_to_visible": "IR→VIS", "visible_to_infrared": "VIS→IR"}


def failure_rate_text(count: FailureCount) -> str:
    """``"75% (30-95%)"``: the rate and its 95% Wilson interval, in percent."""
    low, high = count.interval
    return f"{100 * count.rate:.0f}% ({100 * low:.0f}-{100 * high:.0f}%)"


def identity_headers(directions) -> list[str]:
    """Columns of the per-identity table: identity, then failed/queries and rate per direction, then in all."""
    headers = ["identity"]
    for label in [SHORT_DIRECTIONS.get(d, d) for d in directions] + ["both"]:
        headers += [f"{label} failed/queries", f"{label} rate (95% CI)"]
    return headers


__all__ = ["FailuresTab", "SHORT_DIRECTIONS", "TABLE_AND_PLOT_JS", "failure_rate_text", "identity_headers"]
