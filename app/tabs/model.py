"""The Model tab (``/model_card``, ``/model_draws``, ``/compare``): provenance, metrics, the standing across fresh
draws, the ablation table, comparisons."""

from __future__ import annotations

import re
from pathlib import Path, PurePath
from typing import Any

import gradio as gr

from app import config as app_config
from app import resources as app_resources
from app.tabs.shared import DIRECTION_LABELS, TabContext, num, rounded
from app.validation import UserInputError, check_direction, user_errors

#: Columns of the ablation table (:func:`ablation_cells`).
ABLATION_HEADERS = ["row", "label", "seeds", "IR→VIS R-1", "IR→VIS mAP", "IR→VIS mINP", "VIS→IR R-1", "VIS→IR mAP",
                    "VIS→IR mINP", "wall time (min)"]
#: Columns of the standing across fresh draws (:meth:`ModelTab.draws`).
DRAWS_HEADERS = ["direction", "metric", "this model, mean ± sd", "comparison, mean ± sd", "lead, mean",
                 "lead, 95% interval", "draws where the comparison wins"]
#: Row names of the standing across draws.
DRAWS_ROWS = {"infrared_to_visible": "infrared → visible", "visible_to_infrared": "visible → infrared",
              "both_directions": "both directions (mean)"}
DRAWS_METRIC_NAMES = {"rank1": "Rank-1", "mAP": "mAP"}


class ModelTab:
    """Handlers of the Model tab."""

    def __init__(self, ctx: TabContext):
        self.ctx = ctx

    # ================================================================== how good is the served model
    def banner(self):
        """The line at the top of the page: the served model's own metrics (its sidecar's, else as measured
        here) next to what chance scores on the same queries."""
        try:
            ex = self.ctx.explorer()
            card = ex.provenance.model_card("main")
            chance = ex.provenance.chance()
        except Exception:  # noqa: BLE001 - the status line already says why nothing is served
            return ""
        recorded = card.get("metrics_sidecar")
        metrics = recorded if isinstance(recorded, dict) and all(
            isinstance(recorded.get(d), dict) for d in ex.directions) else card.get("metrics_now") or {}
        source = "its sidecar" if metrics is recorded else "measured here"
        parts, chance_parts = [], []
        for direction in ex.directions:
            values, luck = metrics.get(direction) or {}, chance.get(direction) or {}
            short = DIRECTION_SHORT.get(direction, direction)
            parts.append(f"{short} mAP **{num(values.get('mAP'), 1)}**, Rank-1 **{num(values.get('rank1'), 1)}**")
            chance_parts.append(f"mAP {num(luck.get('mAP'), 1)}, Rank-1 {num(luck.get('rank1'), 1)}")
        if len(set(chance_parts)) == 1:
            chance_parts = chance_parts[:1] + ["the same both ways"]
        rank1 = [float((metrics.get(d) or {}).get("rank1") or 0) for d in ex.directions]
        one_in = round(100 / max(min(rank1), 1e-9)) if min(rank1) > 0 else None
        kind = "the frame-wise CLIP baseline" if card.get("is_baseline") else "LSMRL"
        verdict = (f" A weak model: about 1 query in {one_in} finds its identity first." if one_in and one_in >= 4
                   else "")
        draws = self._draws_line(ex)
        return (f"**Served model** {kind} `{Path(card['checkpoint']).stem}` on `{card['dataset']}` "
                f"({source}, percent): {'; '.join(parts)}. **Chance** (a random ranking of the same galleries): "
                f"{', '.join(chance_parts)}.{verdict}" + (f"\n\n{draws}" if draws else ""))

    @staticmethod
    def _draws_line(ex) -> str:
        """One line for the banner: mAP over fresh draws (both directions' mean) and the lead over the
        comparison with its interval; "" without evidence (the Model tab says why)."""
        standing = ex.provenance.draws().standing
        row = standing.row("both_directions", "mAP") if standing else None
        if row is None:
            return ""
        text = (f"**Across {row.model.n} fresh draws** nobody trained on (mean of both directions): mAP "
                f"**{_figure(row.model)}**")
        if row.compare is not None and row.lead is not None:
            text += (f" vs {_figure(row.compare)} for `{standing.compare_name}`; lead {row.lead.mean:+.1f}"
                     f"{_interval(row.lead)}, {_lead_verdict(row.lead)}")
        return text + ". Details in the Model tab."

    # ================================================================== fresh draws
    @user_errors
    def draws(self, progress=gr.Progress()):
        """/model_draws: the main model's standing across fresh data draws (from its ``eval-draws`` evidence),
        against its comparison (the baseline). Returns (text, table); without evidence the text says why."""
        ex = self.ctx.explorer(progress)
        evidence = ex.provenance.draws()
        standing = evidence.standing
        if standing is None:
            return f"### Standing across fresh draws\n\n{evidence.note}", []
        seeds = standing.seeds
        span = f"{seeds[0]}–{seeds[-1]}" if seeds == list(range(seeds[0], seeds[0] + len(seeds))) else \
            ", ".join(map(str, seeds))
        baseline = ex.baseline.sha256 if ex.baseline is not None else None
        compared = ""
        if standing.compare_name:
            served = " (the baseline served here)" if baseline and standing.compare_sha256 == baseline else ""
            compared = (f" The comparison is `{standing.compare_name}`{served}; the lead is the paired difference "
                        "this model − comparison on the same draws, with its 95% Student-t interval.")
        lines = [
            "### Standing across fresh draws",
            f"`{standing.model_name}` on **{len(seeds)} fresh draws** of {standing.identities} identities each "
            f"(SynthVVI v{standing.synthvvi_version}, seeds {span}; no draw was used for training or tuning), "
            f"percent, mean ± sample sd over the draws.{compared} Source: {evidence.note}.",
        ]
        both = standing.row("both_directions", "mAP")
        if both is not None and both.lead is not None:
            lines.append(f"**Verdict** (mAP, both directions): lead {both.lead.mean:+.1f}{_interval(both.lead)}, "
                         f"{_lead_verdict(both.lead)}. The test split in the table above is a single draw, so "
                         "its gap between the two models is not the headline.")
        rows = [[DRAWS_ROWS.get(r.direction, r.direction), DRAWS_METRIC_NAMES.get(r.metric, r.metric),
                 _figure(r.model), _figure(r.compare) if r.compare else None,
                 f"{r.lead.mean:+.1f}" if r.lead else None,
                 f"{r.lead.ci95[0]:+.1f} to {r.lead.ci95[1]:+.1f}" if r.lead and r.lead.ci95 else None,
                 f"{r.lead.reversals} of {len(r.lead.per_draw)}" if r.lead else None] for r in standing.rows]
        return "\n\n".join(lines), rows

    # ================================================================== the model card
    @user_errors
    def model_card(self, model: str = "main", progress=gr.Progress()):
        """/model_card: provenance, config, metrics of every loaded checkpoint and the ablation table.
        Returns (card, config JSON, metrics table, ablation table, ablation source). No server path is shown:
        paths are given relative to the repository, or by their file name."""
        ex = self.ctx.explorer(progress)
        model = str(model or "main")
        card = ex.provenance.model_card(model)
        lines = [f"**{card['role']}**: `{app_config.display_path(card['checkpoint'])}`",
                 f"weights sha256 `{card['weights_sha256'][:16]}…`"
                 + (" (matches the sidecar)" if card.get("sha256_matches") else ""),
                 f"data set `{card['dataset']}` (fingerprint `{card['data_fingerprint']}`), T = "
                 f"{card['test_num_frames']} test frames sampled {card['test_sampling']}, metric {card['metric']}, "
                 f"camera filter {'on' if card['camera_filter'] else 'off'}, re-ranking "
                 f"{'on' if card['reranking'] else 'off'}"]
        if card.get("is_baseline"):
            lines.append("This is the frame-wise CLIP baseline (no grouped/shift blocks, no SD, no CMI).")
        training = without_machine_paths(card.get("training") or {})
        if training:
            keys = ", ".join(f"{k} {v}" for k, v in list(training.items())[:8] if not isinstance(v, (dict, list)))
            if keys:
                lines.append(f"training: {keys}")
        for warning in card.get("warnings") or []:
            lines.append(f"⚠️ {keys_in_words(paths_in_words(warning))}")
        for note in card.get("notes") or []:
            lines.append(f"- {keys_in_words(paths_in_words(note))}")
        metrics_rows = []
        for role in ("main", "compare", "baseline"):
            try:
                role_card = ex.provenance.model_card(role)
            except Exception:  # noqa: BLE001 - not loaded
                continue
            for direction, values in (role_card.get("metrics_now") or {}).items():
                label = DIRECTION_LABELS.get(direction, direction)
                metrics_rows.append([role, Path(role_card["checkpoint"]).stem, label]
                                    + [rounded(values.get(key), 2) for key in ("rank1", "rank5", "rank10", "rank20",
                                                                              "mAP", "mINP")])
        for direction, luck in ex.provenance.chance().items():
            metrics_rows.append(["chance", "random ranking", DIRECTION_LABELS.get(direction, direction),
                                 rounded(luck["rank1"], 2), None, None, None, rounded(luck["mAP"], 2), None])
        ablation, source = app_resources.ablation_rows(ex)
        ablation_table = [ablation_cells(row) for row in ablation]
        config = without_machine_paths({"model_config": card.get("model_config"), "training": card.get("training"),
                                        "data": {k: v for k, v in (card.get("data") or {}).items()
                                                 if k != "train_attributes"},
                                        "metrics_sidecar": card.get("metrics_sidecar")})
        return "\n\n".join(lines), config, metrics_rows, ablation_table, source

    @user_errors
    def compare(self, other: str, direction: str, progress=gr.Progress()):
        """/compare: per-query AP changes main -> ``other`` ("baseline" or "compare"). Returns (summary,
        AP-change figure, changed top-1 table)."""
        # plotly loads with the first chart, not at start-up
        from lsmrl.viz.figures import ap_change_figure

        ex = self.ctx.explorer(progress)
        direction = check_direction(direction, ex.directions)
        other = str(other or "")
        if not other:
            return ("Start the app with `--compare-checkpoint` (or with the demo's baseline) to compare two models "
                    "on the same queries.", None, [])
        comparisons = ex.provenance.compare(other)
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

    def model_and_compare(self, model: str, other: str, direction: str):
        """The Model tab on opening: the model card, the standing across draws, then the comparison."""
        return (*self.model_card(model), *self.draws(), *self.compare(other, direction))


def without_machine_paths(value: Any) -> Any:
    """``value`` (JSON-like) with every absolute path reduced to its file name: a sidecar records where its
    run wrote things (``/work/runs/.../clip-mini.safetensors``), which says nothing to a reader here."""
    if isinstance(value, dict):
        return {key: without_machine_paths(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_machine_paths(item) for item in value]
    if isinstance(value, str) and (value.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", value)) and len(value) > 1:
        return PurePath(value.replace("\\", "/")).name
    return value


def paths_in_words(text: str) -> str:
    """``text`` with every absolute path in it shown as :func:`app.config.display_path` shows it."""
    return re.sub(r"(?<![\w.])/(?:[\w.+-]+/)*[\w.+-]+", lambda m: app_config.display_path(m.group(0)), str(text))


def keys_in_words(text: str) -> str:
    """``text`` with the data set's direction keys ("infrared_to_visible") written as words."""
    for key, words in DRAWS_ROWS.items():
        text = text.replace(key, words)
    return text


def _figure(figure) -> str:
    """A figure over draws as "mean ± sd" (the mean alone for one draw)."""
    return f"{figure.mean:.1f}" if figure.sd is None else f"{figure.mean:.1f} ± {figure.sd:.1f}"


def _interval(lead) -> str:
    return f" (95% interval {lead.ci95[0]:+.1f} to {lead.ci95[1]:+.1f})" if lead.ci95 else ""


def _lead_verdict(lead) -> str:
    """In words: whether the paired interval excludes 0, and on how many draws the comparison wins."""
    wins = f"the comparison scores higher on {lead.reversals} of {len(lead.per_draw)} draws"
    if lead.ci95 is None:
        return f"one draw only, no interval; {wins}"
    if lead.ci95[0] > 0:
        return f"above 0: a lead; {wins}"
    if lead.ci95[1] < 0:
        return f"below 0: the comparison leads; {wins}"
    return f"the interval includes 0, so the lead is not established; {wins}"


def _mean_sd(values: list[float]) -> str | None:
    values = [float(v) for v in values if v is not None]
    if not values:
        return None
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.1f}"
    sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{mean:.1f} ± {sd:.1f}"


def ablation_cells(row: dict) -> list:
    """One row of the ablation table: row, label, seeds, then R-1 / mAP / mINP per direction (mean ± sample sd
    over the seeds when the row has several), and the wall time."""
    runs = [run.get("metrics") or {} for run in row.get("seeds") or [] if isinstance(run, dict)]
    if not runs and isinstance(row.get("metrics_by_seed"), dict):
        runs = [m or {} for m in row["metrics_by_seed"].values()]
    if not runs:
        runs = [row.get("metrics") or {}]
    cells = [row.get("row", ""), row.get("label", ""), len(runs) if runs != [{}] else 0]
    for direction in ("infrared_to_visible", "visible_to_infrared"):
        for key in ("rank1", "mAP", "mINP"):
            cells.append(_mean_sd([(run.get(direction) or {}).get(key) for run in runs]))
    wall = row.get("wall_time_s") or row.get("wall_s")
    if wall is None and isinstance(row.get("timings"), dict):
        wall = sum(float(v) for v in row["timings"].values() if isinstance(v, (int, float))) or None
    cells.append(None if wall is None else round(float(wall) / 60, 1))
    return cells


#: Short direction names for one-line figures.
DIRECTION_SHORT = {"infrared_to_visible": "IR→VIS", "visible_to_infrared": "VIS→IR"}

__all__ = ["ABLATION_HEADERS", "DIRECTION_SHORT", "DRAWS_HEADERS", "keys_in_words", "ModelTab", "ablation_cells", "paths_in_words", "without_machine_paths"]
