"""The modality gap, stage by stage (anchors §7, feature 4).

For every stage of the model (the frame-wise CLIP baseline's ``stfl``, then this
model's ``stfl``, ``sd``, ``cmi`` and ``embedding``) :func:`gap_metrics` measures
how far apart the visible and the infrared features are, in the original
feature space (the UMAP pictures only illustrate these numbers):

``centroid_distance``
    Euclidean distance between the visible and the infrared centroids of the
    L2-normalised features (0 = same centre; at most 2).
``same_id_cross_sim`` / ``diff_id_cross_sim`` / ``cross_sim_gap``
    Mean cosine similarity over all cross-modal pairs (one visible, one infrared
    tracklet) of the same identity, of different identities, and their
    difference: what retrieval needs is a large ``cross_sim_gap``.
``same_id_intra_sim``
    The same-identity similarity *within* a modality, for comparison: when it is
    much higher than ``same_id_cross_sim``, identities cluster by modality.
``mean_cosine`` / ``cosine_spread`` / ``collapsed``
    Mean and standard deviation of the cosine over all pairs of tracklets
    (both modalities, a tracklet not with itself). A *collapsed* feature space
    (``cosine_spread`` under :data:`COLLAPSE_SPREAD`: every feature points almost
    the same way) makes the centroid distance and every cosine small for a
    reason that has nothing to do with the modalities; :func:`gap_findings`
    says so instead of reading it as a closed gap.
``probe_accuracy``
    Cross-validated accuracy of a linear probe (sklearn ``LogisticRegression`` on
    standardised L2-normalised features, stratified k-fold, k = 5 or fewer when
    a modality has fewer tracklets) predicting the modality: 0.5 (``probe_chance``
    for balanced sets) means the modalities cannot be told apart linearly,
    1.0 a complete gap.
``rank1_<direction>`` / ``mAP_<direction>``
    Retrieval in percent if that stage were the retrieval feature, with the data
    set's own protocol (distance, camera rule, both directions).

The ``baseline`` stage is the frame-wise CLIP baseline checkpoint's retrieval
feature (:data:`BASELINE_FEATURE`, after its BNNeck): the feature its own
metrics (the Model tab's) rank with, so its Rank-1/mAP here are the same numbers.

:func:`gap_findings` turns the rows into sentences that follow the numbers
(which stage has the smallest centroid distance, whether the probe stays near
1, collapsed stages) rather than a fixed claim.

Only numpy and scikit-learn are needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lsmrl.data.tracklet import DIRECTIONS, INFRARED, VISIBLE
from lsmrl.evaluation.protocols import evaluate_directions

#: Display names of the stages, in pipeline order.
STAGE_LABELS = {
    "baseline": "baseline (frame-wise CLIP)",
    "stfl": "STFL",
    "sd": "after SD",
    "cmi": "after CMI",
    "embedding": "final embedding",
}

#: Which of the baseline checkpoint's features is its ``baseline`` stage: its retrieval feature, the one its
#: metrics rank with (one definition of "the baseline" wherever the app shows it).
BASELINE_FEATURE = "embedding"

#: Below this standard deviation of the pairwise cosines a stage's feature space is called collapsed.
COLLAPSE_SPREAD = 0.02

#: A modality probe at or above this accuracy reads the modality almost perfectly: the gap is open.
PROBE_OPEN = 0.9

#: Columns of a gap row with a human label each (retrieval columns depend on the data set's directions).
GAP_COLUMNS = {
    "stage": "stage",
    "label": "stage (label)",
    "centroid_distance": "centroid distance",
    "same_id_cross_sim": "same-ID cross-modal cos",
    "diff_id_cross_sim": "diff-ID cross-modal cos",
    "cross_sim_gap": "same - diff",
    "same_id_intra_sim": "same-ID intra-modal cos",
    "probe_accuracy": "modality probe acc.",
    "probe_chance": "probe chance",
    "cosine_spread": "cosine spread (collapse check)",
}

#: One sentence per column of the gap table, for the legend under it (the module docstring has the detail).
GAP_DEFINITIONS = {
    "centroid_distance": "distance between the visible and the infrared centre of the L2-normalised features "
                         "(0 = same centre, at most 2)",
    "same_id_cross_sim": "mean cosine between a visible and an infrared tracklet of the same identity",
    "diff_id_cross_sim": "the same for different identities",
    "cross_sim_gap": "same-ID minus diff-ID cross-modal cosine: how well identities separate across modalities "
                     "(retrieval needs it large)",
    "same_id_intra_sim": "mean cosine between two tracklets of one identity in one modality (much higher than "
                         "the cross-modal one: identities cluster by modality)",
    "probe_accuracy": "5-fold accuracy of a linear probe that predicts the modality from the feature "
                      "(1 = fully readable, probe chance = the larger modality's share)",
    "probe_chance": "what the probe scores by always guessing the larger modality",
    "cosine_spread": f"standard deviation of the cosine over all pairs of tracklets; under {COLLAPSE_SPREAD} the "
                     "features are collapsed (all point the same way) and the distances above say nothing about the "
                     "modalities",
    "rank1": "Rank-1 (%) if this stage's feature did the retrieval, with the data set's protocol",
    "mAP": "mAP (%) if this stage's feature did the retrieval",
}

_CHUNK = 1024


def modality_mask(modalities: Any) -> np.ndarray:
    """Boolean infrared mask from ``"visible"/"infrared"`` words or 0 (visible) / 1 (infrared) codes."""
    values = np.asarray(modalities)
    if values.dtype.kind in "USO":
        words = values.astype(str)
        unknown = set(words) - {VISIBLE, INFRARED}
        if unknown:
            raise ValueError(f"modalities must be 'visible'/'infrared', got {sorted(unknown)[:3]}")
        return words == INFRARED
    return values.astype(np.int64) == 1


def l2_normalise(features: Any) -> np.ndarray:
    array = np.asarray(features, dtype=np.float32)
    return array / np.maximum(np.linalg.norm(array, axis=1, keepdims=True), 1e-12)


def pair_similarity_means(a: np.ndarray, b: np.ndarray, pids_a: np.ndarray, pids_b: np.ndarray,
                exclude_self: bool = False) -> tuple[float, float]:
    """Mean cosine over pairs (a_i, b_j) with the same pid and with a different pid (chunked)."""
    same_sum = diff_sum = 0.0
    same_n = diff_n = 0
    for start in range(0, len(a), _CHUNK):
        sims = a[start:start + _CHUNK] @ b.T
        same = pids_a[start:start + _CHUNK, None] == pids_b[None, :]
        if exclude_self:
            rows = np.arange(start, min(start + _CHUNK, len(a)))
            same[rows - start, rows] = False
            valid_diff = ~same
            valid_diff[rows - start, rows] = False
        else:
            valid_diff = ~same
        same_sum += float(sims[same].sum())
        same_n += int(same.sum())
        diff_sum += float(sims[valid_diff].sum())
        diff_n += int(valid_diff.sum())
    return (same_sum / same_n if same_n else float("nan"), diff_sum / diff_n if diff_n else float("nan"))


def cosine_statistics(x: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of the cosine over all pairs of rows of L2-normalised ``x`` (a row not with
    itself; chunked, so memory stays ``_CHUNK x N``)."""
    total = squares = 0.0
    count = 0
    for start in range(0, len(x), _CHUNK):
        sims = (x[start:start + _CHUNK] @ x.T).astype(np.float64)
        rows = np.arange(start, min(start + _CHUNK, len(x)))
        keep = np.ones_like(sims, dtype=bool)
        keep[rows - start, rows] = False
        total += float(sims[keep].sum())
        squares += float(np.square(sims[keep]).sum())
        count += int(keep.sum())
    if count == 0:
        return float("nan"), float("nan")
    mean = total / count
    return mean, float(np.sqrt(max(squares / count - mean * mean, 0.0)))


def probe_accuracy(features: Any, is_infrared: np.ndarray, folds: int = 5, max_samples: int = 4000,
                   seed: int = 0) -> float:
    """Cross-validated modality-probe accuracy (NaN when a modality has fewer than 2 items).

    At most ``max_samples`` items are used (a seeded stratified subsample), so the
    probe stays a few seconds on real test sets.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = l2_normalise(features)
    y = np.asarray(is_infrared, dtype=np.int64)
    if len(x) > max_samples:
        rng = np.random.default_rng(seed)
        keep = np.concatenate([
            rng.choice(np.flatnonzero(y == c), size=max(1, round(max_samples * np.mean(y == c))), replace=False)
            for c in (0, 1) if np.any(y == c)])
        x, y = x[keep], y[keep]
    smallest = min(int(np.sum(y == 0)), int(np.sum(y == 1)))
    if smallest < 2:
        return float("nan")
    splitter = StratifiedKFold(n_splits=min(folds, smallest), shuffle=True, random_state=seed)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return float(np.mean(cross_val_score(probe, x, y, cv=splitter, scoring="accuracy")))


def stage_gap(features: Any, pids: Any, modalities: Any, folds: int = 5, seed: int = 0) -> dict[str, float]:
    """The geometric gap metrics of one stage's features (see the module docstring)."""
    x = l2_normalise(features)
    pids = np.asarray(pids)
    infrared = modality_mask(modalities)
    if len(x) != len(pids) or len(x) != len(infrared):
        raise ValueError(f"features ({len(x)}), pids ({len(pids)}) and modalities ({len(infrared)}) differ in length")
    vis, ir = x[~infrared], x[infrared]
    row: dict[str, float] = {"num_visible": int(len(vis)), "num_infrared": int(len(ir))}
    if len(vis) == 0 or len(ir) == 0:
        raise ValueError("both modalities are needed to measure a modality gap")
    row["centroid_distance"] = float(np.linalg.norm(vis.mean(0) - ir.mean(0)))
    same, diff = pair_similarity_means(vis, ir, pids[~infrared], pids[infrared])
    row["same_id_cross_sim"], row["diff_id_cross_sim"] = same, diff
    row["cross_sim_gap"] = same - diff
    intra = []
    for part, part_pids in ((vis, pids[~infrared]), (ir, pids[infrared])):
        value, _ = pair_similarity_means(part, part, part_pids, part_pids, exclude_self=True)
        if not np.isnan(value):
            intra.append(value)
    row["same_id_intra_sim"] = float(np.mean(intra)) if intra else float("nan")
    row["mean_cosine"], row["cosine_spread"] = cosine_statistics(x)
    row["collapsed"] = bool(row["cosine_spread"] < COLLAPSE_SPREAD)
    row["probe_accuracy"] = probe_accuracy(x, infrared, folds=folds, seed=seed)
    row["probe_chance"] = float(max(np.mean(infrared), 1 - np.mean(infrared)))
    return row


def gap_metrics(features_by_stage: Mapping[str, Any], pids: Any, modalities: Any, dataset=None,
                folds: int = 5, seed: int = 0) -> list[dict]:
    """One row per stage (in the mapping's order) with the gap metrics and, given ``dataset``, retrieval.

    ``features_by_stage``: ``{"baseline": (N, D), "stfl": ..., ...}``, one row per
    tracklet in the same order as ``pids`` and ``modalities`` (words or 0/1
    codes, 1 = infrared, as :func:`lsmrl.engine.extract.extract_stages` returns).
    ``dataset``: a :class:`~lsmrl.data.tracklet.VVIDataset`; when the features
    have one row per ``dataset.test`` entry, each row also gets
    ``rank1_<direction>`` and ``mAP_<direction>`` (percent) for its directions,
    ranked with ``dataset.metric`` and ``dataset.camera_filter``.
    """
    rows = []
    for stage, features in features_by_stage.items():
        row: dict[str, Any] = {"stage": stage, "label": STAGE_LABELS.get(stage, stage)}
        row.update(stage_gap(features, pids, modalities, folds=folds, seed=seed))
        if dataset is not None and len(features) == len(dataset.test):
            metrics = evaluate_directions(np.asarray(features), dataset, metric=dataset.metric)
            for direction, values in metrics.items():
                row[f"rank1_{direction}"] = float(values["rank1"])
                row[f"mAP_{direction}"] = float(values["mAP"])
        rows.append(row)
    return rows


def gap_columns(rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Column key -> human label for ``rows`` (the fixed columns, then any retrieval columns)."""
    labels = dict(GAP_COLUMNS)
    short = {DIRECTIONS[0]: "IR->VIS", DIRECTIONS[1]: "VIS->IR"}
    for row in rows:
        for key in row:
            if key not in labels and (key.startswith("rank1_") or key.startswith("mAP_")):
                metric, direction = key.split("_", 1)
                labels[key] = f"{short.get(direction, direction)} {'R1' if metric == 'rank1' else 'mAP'} (%)"
    return labels


def gap_legend(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """``[(column label, definition)]`` for the columns of ``rows`` (see :func:`gap_columns`)."""
    out = []
    for key, label in gap_columns(rows).items():
        if key in ("stage", "label") or not any(key in r for r in rows):
            continue
        out.append((label, GAP_DEFINITIONS.get(key) or GAP_DEFINITIONS.get(key.split("_", 1)[0], "")))
    return out


def _number(value: Any) -> str:
    """A metric as the gap table shows it (3 decimals), so that a sentence and its table cell read the same."""
    return "n/a" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{float(value):.3f}"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _trend(rows: Sequence[Mapping[str, Any]], key: str) -> str:
    return " → ".join(f"{row.get('label', row['stage'])} {_number(row.get(key))}" for row in rows)


def gap_findings(rows: Sequence[Mapping[str, Any]], tolerance: float = 0.05) -> list[str]:
    """Sentences about a gap table (rows of :func:`gap_metrics`) that follow its numbers, in markdown.

    The model's stages (every row but ``baseline``) are read in order: which has the
    smallest centroid distance and whether the last ends below the first (by more
    than ``tolerance``, relative), whether the modality probe stays at or above
    :data:`PROBE_OPEN` at every stage (then the gap is open whatever the distances
    say) and how the identity separation moves. A collapsed stage (see the module
    docstring) is flagged instead of being read as a small gap.
    """
    model = [r for r in rows if r["stage"] != "baseline"]
    out: list[str] = []
    usable = [r for r in model if not r.get("collapsed")]
    if usable:
        first, last = usable[0], usable[-1]
        lowest = min(usable, key=lambda r: r["centroid_distance"])
        change = last["centroid_distance"] - first["centroid_distance"]
        if len(usable) == 1:
            verdict = ""
        elif change < -tolerance * first["centroid_distance"]:
            verdict = (f" {_capital(last['label'])} ends {_number(-change)} below {first['label']}: the centres move closer "
                       "over the pipeline.")
        elif change > tolerance * first["centroid_distance"]:
            verdict = (f" {_capital(last['label'])} ends {_number(change)} above {first['label']}: the centres do not move "
                       "closer over the pipeline.")
        else:
            verdict = f" {_capital(last['label'])} ends about where {first['label']} started: the centres barely move."
        out.append(f"**Centroid distance** (visible vs infrared centre): {_trend(usable, 'centroid_distance')}. "
                   f"Lowest: {lowest['label']} ({_number(lowest['centroid_distance'])}).{verdict}")
        probes = [r["probe_accuracy"] for r in usable if not np.isnan(r.get("probe_accuracy", np.nan))]
        if probes:
            chance = max(r.get("probe_chance", 0.5) for r in usable)
            span = f"{_number(min(probes))}" if min(probes) == max(probes) else \
                f"{_number(min(probes))}-{_number(max(probes))}"
            if min(probes) >= PROBE_OPEN:
                out.append(f"**Modality probe**: a linear probe tells the modality from the feature with accuracy "
                           f"{span} at every stage (chance {_number(chance)}): the modalities stay linearly separable, "
                           "so the gap is **not closed** at any stage, whatever the distances say.")
            else:
                near = [r for r in usable if r["probe_accuracy"] <= chance + 0.1]
                where = (f" Near chance at {', '.join(r['label'] for r in near)}: there the modality can no longer "
                         "be read linearly." if near else " The modality stays partly readable at every stage.")
                out.append(f"**Modality probe**: accuracy {_trend(usable, 'probe_accuracy')} (chance "
                           f"{_number(chance)}).{where}")
        best = max(usable, key=lambda r: r["cross_sim_gap"])
        out.append(f"**Identity separation across modalities** (same-ID minus diff-ID cosine, what retrieval needs): "
                   f"{_trend(usable, 'cross_sim_gap')}; largest: {best['label']}.")
    for row in rows:
        if row["stage"] == "baseline" and not row.get("collapsed"):
            out.append(f"**{row['label']}** (its retrieval feature, the one its metrics rank with): centroid distance "
                       f"{_number(row['centroid_distance'])}, probe {_number(row.get('probe_accuracy'))}, same - diff "
                       f"{_number(row['cross_sim_gap'])}.")
        if row.get("collapsed"):
            out.append(f"⚠ **{row.get('label', row['stage'])}: collapsed feature space.** Every pair of tracklets has "
                       f"cosine {_number(row['mean_cosine'])} ± {_number(row['cosine_spread'])}, so its centroid "
                       f"distance ({_number(row['centroid_distance'])}) and cosines are small because all features "
                       "point the same way, not because the modalities meet; the probe still reads the modality at "
                       f"{_number(row.get('probe_accuracy'))}.")
    return out


def umap_caveat(row: Mapping[str, Any]) -> str:
    """What a stage's UMAP picture can and cannot say about the gap, from its gap row."""
    probe = row.get("probe_accuracy", float("nan"))
    if row.get("collapsed"):
        return (f"This stage's features are collapsed (pairwise cosine {_number(row['mean_cosine'])} ± "
                f"{_number(row['cosine_spread'])}): the layout spreads out differences too small to matter.")
    if not np.isnan(probe) and probe >= PROBE_OPEN:
        return ("UMAP keeps neighbourhoods, not the direction that separates the modalities: where this picture mixes "
                "visible and infrared points, that is **not** evidence of a closed gap, since the linear probe reads "
                f"the modality from this stage's feature with accuracy {_number(probe)}.")
    return (f"The modality probe reads {_number(probe)} here (chance {_number(row.get('probe_chance'))}): judge the "
            "gap by the table, the picture only illustrates it.")


__all__ = ["BASELINE_FEATURE", "COLLAPSE_SPREAD", "GAP_COLUMNS", "GAP_DEFINITIONS", "PROBE_OPEN", "STAGE_LABELS",
           "cosine_statistics", "gap_columns", "gap_findings", "gap_legend", "gap_metrics", "l2_normalise", "modality_mask",
           "pair_similarity_means", "probe_accuracy", "stage_gap", "umap_caveat"]
