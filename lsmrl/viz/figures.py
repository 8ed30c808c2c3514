"""The explorer's plotly figures: every chart the app shows, drawn from what :mod:`lsmrl.analysis` computes.

The analysis modules return numbers, arrays and records; this module only draws
them (colours, legends, titles, axis labels), so a notebook or another front end
can reuse either half.

=================================  ==============================================================
figure                             of
=================================  ==============================================================
:func:`umap_figure`                a stage's 2-D UMAP layout, the query starred, its matches ringed
:func:`umap_view_figure`           the same for an explorer's :class:`~lsmrl.analysis.views.gap.UMAPView`
:func:`gap_figure`                 the modality-gap metrics of every stage
:func:`prompt_similarity_figure`   a tracklet's similarity to identity prompts, before/after SD
:func:`sd_attention_figure`        SD's attention over identity prompts
:func:`probe_figure`               attribute probes before/after SD
:func:`similarity_histogram_figure` true-match and impostor similarities
:func:`camera_pair_figure`         Rank-1 failure rate per (query camera, top-1 gallery camera)
:func:`attribute_failure_figure`   failure rate per query attribute
:func:`ap_change_figure`           AP change per query between two checkpoints
:func:`frame_contribution_figure`  each frame's share of a match's similarity
=================================  ==============================================================
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from lsmrl.analysis.compare import Comparison
from lsmrl.analysis.diffusion import ProbeRow, TrackletDiffusion
from lsmrl.analysis.failure_stats import MIN_GROUP, FailureStatistics, wilson_interval
from lsmrl.analysis.modality_gap import GAP_COLUMNS, STAGE_LABELS
from lsmrl.analysis.views.gap import UMAPView

MODALITY_COLOURS = {"visible": "#e4572e", "infrared": "#3a6ea5"}
#: Directions in words, for titles.
DIRECTION_WORDS = {"infrared_to_visible": "infrared → visible", "visible_to_infrared": "visible → infrared"}


def _hover(meta: Mapping[str, Sequence], rows: Iterable[int]) -> list[str]:
    return [f"{meta['tid'][i]}<br>identity {meta['pid'][i]}<br>camera {meta['camid'][i]}<br>{meta['modality'][i]}"
            for i in rows]


def umap_figure(coords: Any, meta: Mapping[str, Sequence], stage: str, highlight_query: int | None = None,
                highlight_matches: Iterable[int] = (), match_correct: Sequence[bool] | None = None,
                webgl_above: int = 3000, colour_by: str = "modality"):
    """Scatter of a stage's 2-D layout.

    ``colour_by="modality"`` (default): colour = modality, traces "visible" and
    "infrared". ``colour_by="identity"``: colour = identity (a cycled palette),
    marker = modality (circle visible, diamond infrared); the identities of the
    query and of its matches get a trace and a legend entry each ("id 205
    (query)"), every other point is in the trace "other identities" (100
    identities cannot each have a legend entry one could read).
    ``coords``: (N, 2) of ``stage``, or the dict from :func:`umap_layouts`.
    ``meta``: per-point lists (:func:`point_meta`), row i describing ``coords[i]``.
    ``highlight_query``: a *row* of ``coords`` (== the test index when the
    layout covers all of ``dataset.test``) drawn as a large star;
    ``highlight_matches``: rows ringed (green/red by ``match_correct`` if given,
    else black); the highlight traces are named "query" and "top matches".
    """
    if colour_by not in ("modality", "identity"):
        raise ValueError(f"colour_by must be 'modality' or 'identity', got {colour_by!r}")
    if isinstance(coords, Mapping):
        coords = coords[stage]
    coords = np.asarray(coords)
    n = len(coords)
    for name, values in meta.items():
        if len(values) != n:
            raise ValueError(f"meta[{name!r}] has {len(values)} entries for {n} points")
    pids = list(meta["pid"])
    scatter = go.Scattergl if n > webgl_above else go.Scatter
    figure = go.Figure()
    matches = [int(i) for i in highlight_matches]

    def customdata(rows):
        return [meta["test_index"][i] for i in rows] if "test_index" in meta else None

    if colour_by == "modality":
        for modality in ("visible", "infrared"):
            rows = [i for i in range(n) if meta["modality"][i] == modality]
            figure.add_trace(scatter(
                x=coords[rows, 0] if rows else [], y=coords[rows, 1] if rows else [], mode="markers", name=modality,
                marker=dict(color=MODALITY_COLOURS[modality], size=8, opacity=0.8, line=dict(width=0.5, color="white")),
                text=_hover(meta, rows), hovertemplate="%{text}<extra></extra>", customdata=customdata(rows)))
        legend_title = "modality"
    else:
        palette = IDENTITY_PALETTE
        colour_of = {pid: palette[i % len(palette)] for i, pid in enumerate(sorted(set(pids)))}
        highlighted: list[int] = []
        for row in ([int(highlight_query)] if highlight_query is not None else []) + matches:
            if pids[row] not in highlighted:
                highlighted.append(pids[row])
        symbol = {"visible": "circle", "infrared": "diamond"}
        rest = [i for i in range(n) if pids[i] not in highlighted]
        figure.add_trace(scatter(
            x=coords[rest, 0] if rest else [], y=coords[rest, 1] if rest else [], mode="markers",
            name="other identities", marker=dict(color=[colour_of[pids[i]] for i in rest], size=7, opacity=0.35,
                                                 symbol=[symbol.get(meta["modality"][i], "circle") for i in rest]),
            text=_hover(meta, rest), hovertemplate="%{text}<extra></extra>", customdata=customdata(rest)))
        query_pid = pids[int(highlight_query)] if highlight_query is not None else None
        for pid in highlighted:
            rows = [i for i in range(n) if pids[i] == pid]
            figure.add_trace(go.Scatter(
                x=coords[rows, 0], y=coords[rows, 1], mode="markers",
                name=f"id {pid}" + (" (query)" if pid == query_pid else ""),
                marker=dict(color=colour_of[pid], size=11, opacity=0.95, line=dict(width=1, color="black"),
                            symbol=[symbol.get(meta["modality"][i], "circle") for i in rows]),
                text=_hover(meta, rows), hovertemplate="%{text}<extra></extra>", customdata=customdata(rows)))
        legend_title = "identity (circle: visible, diamond: infrared)"
    if matches:
        colours = ["black"] * len(matches) if match_correct is None else [
            "#2a9d3f" if ok else "#d62828" for ok in match_correct]
        figure.add_trace(go.Scatter(
            x=coords[matches, 0], y=coords[matches, 1], mode="markers", name="top matches",
            marker=dict(symbol="circle-open", size=18, line=dict(width=2.5), color=colours),
            text=[f"rank {r + 1}<br>" + h for r, h in enumerate(_hover(meta, matches))],
            hovertemplate="%{text}<extra></extra>"))
    if highlight_query is not None:
        q = int(highlight_query)
        figure.add_trace(go.Scatter(
            x=[coords[q, 0]], y=[coords[q, 1]], mode="markers", name="query",
            marker=dict(symbol="star", size=22, color="gold", line=dict(width=1.5, color="black")),
            text=["query<br>" + _hover(meta, [q])[0]], hovertemplate="%{text}<extra></extra>"))
    figure.update_layout(title=f"UMAP: {STAGE_LABELS.get(stage, stage)}", legend_title=legend_title,
                         xaxis=dict(showticklabels=False, title=""), yaxis=dict(showticklabels=False, title=""),
                         template="plotly_white")
    return figure


#: Colours of identities when the UMAP is coloured by identity (plotly's Dark24, cycled).
IDENTITY_PALETTE = ("#2E91E5", "#E15F99", "#1CA71C", "#FB0D0D", "#DA16FF", "#222A2A", "#B68100", "#750D86",
                    "#EB663B", "#511CFB", "#00A08B", "#FB00D1", "#FC0080", "#B2828D", "#6C7C32", "#778AAE",
                    "#862A16", "#A777F1", "#620042", "#1616A7", "#DA60CA", "#6C4516", "#0D2A63", "#AF0038")


def umap_view_figure(view: UMAPView, **options) -> go.Figure:
    """:func:`umap_figure` of a :class:`~lsmrl.analysis.views.gap.UMAPView` (``options``: ``colour_by``, ...)."""
    return umap_figure(view.coords, view.meta, view.stage, view.query_row, view.match_rows, view.match_correct,
                       **options)


def gap_figure(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str] = (
        "centroid_distance", "cross_sim_gap", "probe_accuracy")):
    """Grouped bars: one group per metric, one bar per stage (hover shows the exact values); a collapsed stage
    (see :mod:`lsmrl.analysis.modality_gap`) is hatched and named so in the legend."""
    figure = go.Figure()
    names = [GAP_COLUMNS.get(m, m) for m in metrics]
    for row in rows:
        values = [row.get(m) for m in metrics]
        name = str(row.get("label", row["stage"])) + (" ⚠ collapsed" if row.get("collapsed") else "")
        figure.add_bar(name=name, x=names, y=values, hovertemplate="%{x}: %{y:.3f}<extra>" + name + "</extra>",
                       marker_pattern_shape="x" if row.get("collapsed") else "")
    figure.update_layout(barmode="group", title="Modality gap per stage", yaxis_title="value",
                         legend_title="stage")
    return figure


# --------------------------------------------------------------------------- figures
def _prompt_label(index: int, pids: Sequence[int] | None) -> str:
    return f"id {pids[index]}" if pids is not None else f"prompt {index}"


def prompt_similarity_figure(report: TrackletDiffusion):
    """Grouped bars over the listed prompts (the top-k after SD, ``report.listed``): similarity before vs after
    SD, one bar pair per prompt, so the chart shows exactly as many prompts as were asked for."""
    listed = report.listed
    labels = [f"#{p.rank_after} " + _prompt_label(p.prompt_index, report.prompt_pids)
              + (" (own)" if p.prompt_index == report.true_prompt_index else "") for p in listed]
    hover = [[p.words or "attributes unknown", p.rank_before] for p in listed]
    figure = go.Figure()
    for name, values, colour in (("before SD (stfl)", [p.similarity_before for p in listed], "#9aa5b1"),
                                 ("after SD (sd)", [p.similarity_after for p in listed], "#3a6ea5")):
        figure.add_bar(name=name, x=labels, y=values, marker_color=colour, customdata=hover,
                       hovertemplate="%{x}: %{y:.3f}<br>rank before SD %{customdata[1]}<br>%{customdata[0]}"
                                     "<extra>" + name + "</extra>")
    figure.update_layout(barmode="group", template="plotly_white", yaxis_title="cosine similarity",
                         title=f"{report.tid} ({report.modality}):<br>its top {len(listed)} identity prompts after SD",
                         legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"),
                         margin=dict(t=70))
    return figure


def sd_attention_figure(report: TrackletDiffusion):
    """Bars of the top SD attention weights over the prompt bank."""
    entries = report.attention
    figure = go.Figure(go.Bar(x=[_prompt_label(e.prompt_index, report.prompt_pids) for e in entries],
                              y=[e.score for e in entries], marker_color="#3a6ea5",
                              customdata=[e.description for e in entries],
                              hovertemplate="%{x}: weight %{y:.3f}<br>%{customdata}<extra></extra>"))
    figure.update_layout(title=f"{report.tid}: SD attention<br>over identity prompts (top {len(entries)})",
                         yaxis_title="attention weight", template="plotly_white", margin=dict(t=70))
    return figure


def probe_figure(rows: Sequence[ProbeRow], metric: str = "auc", stages: Sequence[str] = ("stfl", "sd")):
    """Grouped bars per probe: visible/infrared x before/after SD, for ``metric`` ("auc" or "mean_difference")."""
    if metric not in ("auc", "mean_difference"):
        raise ValueError(f"metric must be 'auc' or 'mean_difference', got {metric!r}")
    probes = list(dict.fromkeys(r.probe for r in rows))
    colours = {("visible", 0): "#f4a582", ("visible", 1): "#e4572e", ("infrared", 0): "#92c5de",
               ("infrared", 1): "#3a6ea5"}
    figure = go.Figure()
    for modality in ("visible", "infrared"):
        for position, stage in enumerate(stages):
            chosen = {r.probe: r for r in rows if r.modality == modality and r.stage == stage}
            name = f"{modality}, {'before SD' if position == 0 else 'after SD'} ({stage})"
            figure.add_bar(
                name=name, x=probes, y=[getattr(chosen[p], metric) if p in chosen else None for p in probes],
                marker_color=colours.get((modality, min(position, 1))),
                customdata=[[chosen[p].num_positive, chosen[p].num_negative] if p in chosen else [0, 0]
                            for p in probes],
                hovertemplate="%{x}: %{y:.3f}<br>%{customdata[0]} positive / %{customdata[1]} negative tracklets"
                              "<extra>" + name + "</extra>")
    if metric == "auc":
        figure.add_hline(y=0.5, line_dash="dash", line_color="grey")
    figure.update_layout(barmode="group", title="Attribute probes: what the features carry, before vs after SD",
                         yaxis_title="AUC (0.5 = no signal)" if metric == "auc" else "score difference",
                         template="plotly_white", xaxis_tickangle=-40)
    return figure


# --------------------------------------------------------------------------- figures
def similarity_histogram_figure(histogram: Mapping[str, Any], title: str = "Positive vs negative similarity"):
    """Overlaid densities of positive and negative pairs (bars over the shared bins)."""
    edges = np.asarray(histogram["edges"])
    centres = (edges[:-1] + edges[1:]) / 2
    width = float(edges[1] - edges[0]) if len(edges) > 1 else 1.0
    figure = go.Figure()
    for name, colour in (("positive", "#2a9d3f"), ("negative", "#d62828")):
        counts = np.asarray(histogram[name], dtype=np.float64)
        density = counts / max(counts.sum() * width, 1e-12)
        figure.add_bar(x=centres, y=density, width=width, name=f"{name} ({int(counts.sum())} pairs)",
                       marker_color=colour, opacity=0.55, customdata=counts,
                       hovertemplate="similarity %{x:.3f}<br>density %{y:.2f}<br>%{customdata} pairs<extra></extra>")
    label = "cosine similarity" if histogram.get("metric", "cosine") == "cosine" else "-euclidean distance"
    figure.update_layout(barmode="overlay", title=title, xaxis_title=label, yaxis_title="density",
                         template="plotly_white")
    return figure


#: Heatmap cells at or above this failure rate are dark in the "Reds" scale: their text is drawn white.
DARK_CELL = 0.55


def camera_pair_figure(statistics: FailureStatistics, min_group: int = MIN_GROUP):
    """Heatmap of the Rank-1 failure rate by (query camera, camera of the top-1 gallery item); every cell shows
    its counts ("failures/queries") in a colour that stays readable on it (white on dark cells), hover adds the
    Wilson 95% interval; cells with fewer than ``min_group`` queries are grey (their rate is too uncertain to
    colour). Cells that fail by construction (top-1 from the query's own camera under the camera rule) are not
    coloured: they are hatched, marked ✕ and named in the subtitle."""
    rows = statistics.by_camera_pair
    q_cams = sorted({r["query_camid"] for r in rows})
    t_cams = sorted({r["top1_camid"] for r in rows})
    z = [[None] * len(t_cams) for _ in q_cams]
    small = [[None] * len(t_cams) for _ in q_cams]
    excluded = [[None] * len(t_cams) for _ in q_cams]
    hover = [[""] * len(t_cams) for _ in q_cams]
    x = [f"cam {c}" for c in t_cams]
    y = [f"cam {c}" for c in q_cams]
    annotations = []
    for r in rows:
        i, j = q_cams.index(r["query_camid"]), t_cams.index(r["top1_camid"])
        low, high = wilson_interval(r["num_failures"], r["num_queries"])
        text = f"{r['num_failures']}/{r['num_queries']}"
        hover[i][j] = (f"{r['num_failures']} of {r['num_queries']} fail: {100 * r['failure_rate']:.0f}% "
                       f"(95% CI {100 * low:.0f}-{100 * high:.0f}%)")
        colour = "#222222"
        if r.get("same_camera_excluded"):
            excluded[i][j] = 0.5
            text += " ✕"
            hover[i][j] += ("<br>same camera: the protocol removes this identity's gallery items of the query's "
                            "camera,<br>so a top-1 from it is always another identity (a failure by construction)")
        elif r["num_queries"] >= min_group:
            z[i][j] = r["failure_rate"]
            colour = "white" if r["failure_rate"] >= DARK_CELL else "#222222"
        else:
            small[i][j] = 0.5
        annotations.append(dict(x=x[j], y=y[i], text=text, showarrow=False, font=dict(color=colour, size=12)))
    grey = [[0, "#d9d9d9"], [1, "#d9d9d9"]]
    figure = go.Figure([
        go.Heatmap(z=z, x=x, y=y, customdata=hover, colorscale="Reds", zmin=0, zmax=1,
                   colorbar=dict(title=dict(text="failure<br>rate"), thickness=14), name=f">= {min_group} queries",
                   hovertemplate="query %{y}, top-1 from %{x}<br>%{customdata}<extra></extra>"),
        go.Heatmap(z=small, x=x, y=y, customdata=hover, showscale=False, colorscale=grey, zmin=0, zmax=1,
                   name=f"< {min_group} queries",
                   hovertemplate="query %{y}, top-1 from %{x}<br>%{customdata}<br>(too few queries to colour)"
                                 "<extra></extra>"),
        go.Heatmap(z=excluded, x=x, y=y, customdata=hover, showscale=False, zmin=0, zmax=1, name="same camera",
                   colorscale=[[0, "#f2f2f2"], [1, "#f2f2f2"]],
                   hovertemplate="query %{y}, top-1 from %{x}<br>%{customdata}<extra></extra>")])
    subtitle = f"cell: failures/queries; grey: under {min_group} queries"
    if any(r.get("same_camera_excluded") for r in rows):
        subtitle += "<br>✕ same camera: fails by construction (camera rule), not coloured"
    figure.update_layout(title=dict(text=f"Rank-1 failures by camera pair<br><sup>{subtitle}</sup>"),
                         xaxis=dict(title=dict(text="gallery camera (of the top-1 item)"), type="category"),
                         yaxis=dict(title=dict(text="query camera"), type="category"),
                         annotations=annotations, template="plotly_white", margin=dict(t=90))
    return figure


def attribute_failure_figure(statistics: FailureStatistics, top: int = 15, min_group: int = MIN_GROUP):
    """For the attributes that matter most: the Rank-1 failure rate of queries with the attribute and without
    it, each with its Wilson 95% interval; attributes with fewer than ``min_group`` queries on either side
    are left out (the caption says how many)."""
    rows = [r for r in statistics.by_attribute if r["num_with"] >= min_group and r["num_without"] >= min_group]
    hidden = len(statistics.by_attribute) - len(rows)
    rows = [r for r in rows if r["rate_ratio"] is not None][:top]
    labels = [r["field"] if r["value"] is True else f"{r['field']}={r['value']}" for r in rows]
    figure = go.Figure()
    for side, colour, name in (("with", "#d62828", "with the attribute"), ("without", "#6c757d", "without it")):
        rates = [r[f"rate_{side}"] for r in rows]
        lows = [r[f"{side}_ci_low"] for r in rows]
        highs = [r[f"{side}_ci_high"] for r in rows]
        counts = [f"{r[f'failures_{side}']}/{r[f'num_{side}']}" for r in rows]
        figure.add_trace(go.Scatter(
            x=rates, y=labels, mode="markers", name=name, marker=dict(color=colour, size=9),
            error_x=dict(type="data", symmetric=False, array=[h - v for h, v in zip(highs, rates)],
                         arrayminus=[v - lo for v, lo in zip(rates, lows)], color=colour, thickness=1.5),
            customdata=[[c, 100 * lo, 100 * h] for c, lo, h in zip(counts, lows, highs)],
            hovertemplate="%{y} " + side + ": %{customdata[0]} fail = %{x:.0%} (95% CI %{customdata[1]:.0f}-"
                          "%{customdata[2]:.0f}%)<extra></extra>"))
    title = (f"Rank-1 failure rate with vs without each attribute<br><sup>{statistics.query_modality} queries; "
             "bars: 95% Wilson interval</sup>")
    if hidden:
        title += f"<br><sup>{hidden} attribute values with under {min_group} queries on a side are not shown</sup>"
    figure.update_layout(title=title, xaxis=dict(title="Rank-1 failure rate", tickformat=".0%", range=[0, 1.02]),
                         yaxis=dict(autorange="reversed"), template="plotly_white", legend=dict(orientation="h"),
                         height=max(360, 28 * len(rows) + 160))
    return figure


def ap_change_figure(comparison: Comparison):
    """Per-query AP change, sorted (a "waterfall"): red = worse under B, green = better; hover names the query."""
    changes = comparison.changes
    colours = ["#d62828" if c.ap_change < 0 else "#2a9d3f" if c.ap_change > 0 else "#9aa5b1" for c in changes]
    hover = [f"{c.tid} (id {c.pid}, cam {c.camid})<br>AP {c.ap_a:.3f} -> {c.ap_b:.3f}<br>"
             f"first true rank {c.first_match_rank_a} -> {c.first_match_rank_b}<br>top-1 {c.status}" for c in changes]
    figure = go.Figure(go.Bar(x=list(range(1, len(changes) + 1)), y=[c.ap_change for c in changes],
                              marker_color=colours, text=hover, hovertemplate="%{text}<extra></extra>",
                              textposition="none"))
    s = comparison.summary
    direction = DIRECTION_WORDS.get(comparison.direction, comparison.direction.replace("_", " "))
    # two lines: one long line is cut at the plot's edge in a narrow window
    title = (f"AP change {comparison.label_a} → {comparison.label_b} ({direction})<br>"
             f"mAP {s.get('mAP_a', 0):.1f} → {s.get('mAP_b', 0):.1f}, "
             f"{s.get('fixed', 0)} top-1 fixed, {s.get('broken', 0)} broken")
    figure.update_layout(title=title, xaxis_title="queries (sorted by AP change)", yaxis_title="AP change",
                         template="plotly_white", margin=dict(t=80))
    return figure


QUERY_BAR = "#1565c0"


MATCH_BAR = "#2e7d32"


def frame_contribution_figure(query_contrib, match_contrib=None, names: tuple[str, str] = ("query", "match"),
                              title: str = "Each frame's share of the attention map"):
    """Plotly grouped bar chart of per-frame shares (in %) for the query and (optionally) the matched tracklet."""
    figure = go.Figure()
    for values, name, colour in ((query_contrib, names[0], QUERY_BAR), (match_contrib, names[1], MATCH_BAR)):
        if values is None:
            continue
        values = np.asarray(values, dtype=np.float64).ravel()
        frames = [f"frame {i + 1}" for i in range(values.size)]
        figure.add_trace(go.Bar(x=frames, y=100.0 * values, name=name, marker_color=colour,
                                hovertemplate="%{x}: %{y:.1f}%<extra>" + name + "</extra>"))
    figure.update_layout(title=title, barmode="group", yaxis_title="share of the map (%)",
                         height=260, margin=dict(l=40, r=10, t=40, b=30), template="plotly_white",
                         legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"))
    return figure
