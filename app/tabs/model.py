"""The Model tab (``/model_card``, ``/compare``): provenance, metrics, the ablation table, comparisons."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from app import state as app_state
from app.tabs.shared import DIRECTION_LABELS, TabContext, rounded
from app.validation import UserInputError, check_direction, user_errors


class ModelTab:
    """Handlers of the Model tab."""

    def __init__(self, ctx: TabContext):
        self.ctx = ctx

    @user_errors
    def model_card(self, model: str = "main", progress=gr.Progress()):
        """/model_card: provenance, config, metrics of every loaded checkpoint and the ablation table.
        Returns (card, config JSON, metrics table, ablation table, ablation source)."""
        ex = self.ctx.explorer(progress)
        model = str(model or "main")
        card = ex.provenance.model_card(model)
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
                role_card = ex.provenance.model_card(role)
            except Exception:  # noqa: BLE001 - not loaded
                continue
            for direction, values in (role_card.get("metrics_now") or {}).items():
                label = DIRECTION_LABELS.get(direction, direction)
                metrics_rows.append([role, Path(role_card["checkpoint"]).stem, label]
                                    + [rounded(values.get(key), 2) for key in ("rank1", "rank5", "rank10", "rank20",
                                                                              "mAP", "mINP")])
        ablation, source = app_state.ablation_rows(ex)
        ablation_table = []
        for row in ablation:
            metrics = row.get("metrics") or {}
            cells = [row.get("row", ""), row.get("label", "")]
            for direction in ("infrared_to_visible", "visible_to_infrared"):
                values = metrics.get(direction) or {}
                cells += [rounded(values.get("rank1"), 2), rounded(values.get("mAP"), 2), rounded(values.get("mINP"), 2)]
            ablation_table.append(cells)
        config = {"model_config": card.get("model_config"), "training": training, "data": card.get("data"),
                  "metrics_sidecar": card.get("metrics_sidecar")}
        return "\n\n".join(lines), config, metrics_rows, ablation_table, f"Ablation rows from {source}."

    @user_errors
    def compare(self, other: str, direction: str, progress=gr.Progress()):
        """/compare: per-query AP changes main -> ``other`` ("baseline" or "compare"). Returns (summary,
        AP-change figure, changed top-1 table)."""
        from lsmrl.analysis import ap_change_figure

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
        """The Model tab on opening: the model card, then the comparison."""
        return (*self.model_card(model), *self.compare(other, direction))


__all__ = ["ModelTab"]
