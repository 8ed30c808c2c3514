"""Where a model comes from and how it compares: the model card, the per-query comparison of two checkpoints, and
the model's standing across fresh data draws.

One test split is not enough to rank two models (on SynthVVI a lead on one draw can reverse on another), so
``python -m lsmrl eval-draws`` (:mod:`lsmrl.engine.draws`) evaluates a checkpoint, and a comparison checkpoint,
on several fresh draws and writes mean ± sd over draws and the paired difference with its 95% interval.
:meth:`Provenance.draws` finds that file for the served weights:

1. the sidecar's ``evidence.draws`` (a path relative to the checkpoint's folder), if it names one;
2. else ``<checkpoint folder>/evidence/eval_draws_*.json`` (:data:`DRAWS_EVIDENCE_GLOB`).

A file counts only when its ``checkpoint.weights_sha256`` is the served weights' sha256 (evidence of other
weights says nothing about these); among several, the one compared with the served baseline, then the one
with the most draws, wins. Without one, the result says so, in words.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lsmrl.analysis.compare import Comparison, compare_all
from lsmrl.errors import LSMRLError

if TYPE_CHECKING:  # pragma: no cover
    from lsmrl.analysis.explorer import Explorer


#: Where evidence of fresh draws lies next to a checkpoint (relative to its folder).
DRAWS_EVIDENCE_GLOB = "evidence/eval_draws_*.json"
#: The rows of a standing over draws: each direction, then their mean (as ``eval-draws`` writes them).
DRAWS_DIRECTIONS = ("infrared_to_visible", "visible_to_infrared", "both_directions")
DRAWS_METRICS = ("rank1", "mAP")


@dataclass
class DrawFigure:
    """One figure (percent) over the draws: mean and sample sd (None for one draw)."""

    mean: float
    sd: float | None
    n: int


@dataclass
class DrawLead:
    """The paired difference model minus comparison (percent points): per draw, mean, 95% t interval."""

    mean: float
    ci95: tuple[float, float] | None  # None for one draw
    per_draw: list[float]

    @property
    def reversals(self) -> int:
        """Draws on which the comparison scored higher than the model."""
        return sum(1 for value in self.per_draw if value < 0)


@dataclass
class DrawsRow:
    """One direction (or both) and one metric: the model, the comparison and the paired difference."""

    direction: str
    metric: str
    model: DrawFigure
    compare: DrawFigure | None
    lead: DrawLead | None


@dataclass
class DrawsStanding:
    """A checkpoint's standing across fresh draws, read from an ``eval-draws`` file."""

    source: str  # the file, relative to the checkpoint's folder
    seeds: list[int]
    identities: int | None
    synthvvi_version: int | None
    precision: str
    model_name: str
    compare_name: str | None
    compare_sha256: str | None
    rows: list[DrawsRow] = field(default_factory=list)

    def row(self, direction: str, metric: str) -> DrawsRow | None:
        return next((r for r in self.rows if r.direction == direction and r.metric == metric), None)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DrawsEvidence:
    """What :meth:`Provenance.draws` found: the standing, or None and why."""

    standing: DrawsStanding | None
    note: str  # where the file was found, or why there is none

    def to_dict(self) -> dict:
        return {"standing": self.standing.to_dict() if self.standing else None, "note": self.note}


def _figure(value: Any) -> DrawFigure:
    return DrawFigure(float(value["mean"]), None if value.get("sd") is None else float(value["sd"]),
                      int(value.get("n") or 0))


def read_draws(report: Mapping[str, Any], source: str) -> DrawsStanding:
    """A :class:`DrawsStanding` from an ``eval-draws`` report (its JSON, parsed); raises :class:`LSMRLError`
    when the report lacks the summary of its model."""
    summary = report.get("summary") or {}
    if not isinstance(summary.get("model"), Mapping):
        raise LSMRLError(f"{source} has no summary of its model over draws (not an eval-draws report?)")
    compare = summary.get("compare") if isinstance(summary.get("compare"), Mapping) else None
    difference = report.get("difference") if isinstance(report.get("difference"), Mapping) else None
    rows = []
    for direction in DRAWS_DIRECTIONS:
        for metric in DRAWS_METRICS:
            mine = (summary["model"].get(direction) or {}).get(metric)
            if not isinstance(mine, Mapping):
                continue
            other = ((compare or {}).get(direction) or {}).get(metric)
            lead = ((difference or {}).get(direction) or {}).get(metric)
            rows.append(DrawsRow(direction, metric, _figure(mine), _figure(other) if other else None,
                                 DrawLead(float(lead["mean"]), tuple(lead["ci95"]) if lead.get("ci95") else None,
                                          [float(v) for v in lead.get("per_draw") or []]) if lead else None))
    described = report.get("compare") or {}
    return DrawsStanding(source=source, seeds=[int(s) for s in report.get("seeds") or []],
                         identities=report.get("identities"), synthvvi_version=report.get("synthvvi_version"),
                         precision=str(report.get("precision") or ""),
                         model_name=Path(str((report.get("checkpoint") or {}).get("path") or "model")).stem,
                         compare_name=Path(str(described["path"])).stem if described.get("path") else None,
                         compare_sha256=described.get("weights_sha256"), rows=rows)


def find_draws(checkpoint: Path, sha256: str, meta: Mapping[str, Any] | None = None,
               baseline_sha256: str | None = None) -> DrawsEvidence:
    """The standing over draws of the weights ``sha256`` stored at ``checkpoint`` (see the module docstring)."""
    folder = Path(checkpoint).parent
    named = ((meta or {}).get("evidence") or {}).get("draws") if isinstance((meta or {}).get("evidence"), Mapping) \
        else None
    candidates = [folder / str(named)] if named else sorted(folder.glob(DRAWS_EVIDENCE_GLOB))
    where = f"`{named}` (named by the sidecar)" if named else f"`{DRAWS_EVIDENCE_GLOB}` next to the checkpoint"
    found, others = [], 0
    for path in candidates:
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(report, Mapping) or (report.get("checkpoint") or {}).get("weights_sha256") != sha256:
            others += 1
            continue
        found.append((path, report))
    if not found:
        why = (f"the {others} file(s) there are of other weights" if others
               else "there is none")
        return DrawsEvidence(None, f"No evidence of fresh draws for these weights (sha256 {sha256[:12]}…): looked "
                                   f"for {where}; {why}. `python -m lsmrl eval-draws` writes it.")
    path, report = max(found, key=lambda item: (
        baseline_sha256 is not None and (item[1].get("compare") or {}).get("weights_sha256") == baseline_sha256,
        len(item[1].get("seeds") or [])))
    source = path.relative_to(folder).as_posix() if path.is_relative_to(folder) else path.name
    standing = read_draws(report, source)
    return DrawsEvidence(standing, f"`{source}` next to the checkpoint (its weights' sha256 matches)")


class Provenance:
    """``explorer.provenance``: see the module docstring."""

    def __init__(self, explorer: "Explorer"):
        self.explorer = explorer

    def draws(self) -> DrawsEvidence:
        """The main model's standing across fresh draws (and against its comparison, usually the baseline)."""
        ex = self.explorer
        baseline = ex.baseline.sha256 if ex.baseline is not None else None
        return ex.lazy("draws", lambda: find_draws(ex.main.path, ex.main.sha256, ex.main.meta, baseline))

    def compare(self, other: str = "compare") -> dict[str, Comparison] | None:
        """Main model (A) vs ``other`` (B: "compare" or "baseline") per direction; None if not loaded."""
        ex = self.explorer
        bundle = ex.bundles().get(other)
        if bundle is None or other == "main":
            return None
        label_a = ex.main.path.stem
        label_b = bundle.path.stem if bundle.path.stem != label_a else f"{bundle.path.stem} ({other})"
        return ex.lazy(f"compare/{other}", lambda: compare_all(
            ex.main.records, bundle.records, ex.dataset, label_a=label_a, label_b=label_b))

    def model_card(self, model: str = "main") -> dict:
        """The checkpoint's sidecar (config, training, data, metrics) plus what was checked now, and warnings."""
        ex = self.explorer
        bundle = ex.bundle(model)
        meta = bundle.meta
        warnings_: list[str] = []
        recorded = meta.get("weights_sha256")
        if recorded and recorded != bundle.sha256:
            warnings_.append(f"the weights' sha256 ({bundle.sha256[:12]}) differs from the one in the sidecar "
                             f"({recorded[:12]}): the two files may come from different runs")
        data = meta.get("data") or {}
        notes = []
        recorded_fp = data.get("metrics_fingerprint") or data.get("fingerprint")
        if recorded_fp and recorded_fp != ex.fingerprint:
            # The sidecar's fingerprint hashes the train and the test tracklet lists of the data the model was
            # trained on; the app often serves a test-only copy (assets/synthvvi), whose fingerprint differs
            # although its test split is the same. So: the same test split if the sidecar's test fingerprint
            # matches, or (older sidecars) if every metric recomputed here equals the recorded one.
            same = self._same_test_split(data, meta.get("metrics"), bundle.metrics)
            if same is None or not same[0]:
                warnings_.append(f"the sidecar metrics were computed on other data (fingerprint {recorded_fp} vs "
                                 f"{ex.fingerprint} now{same[1] if same else ''}); the metrics below are "
                                 "recomputed on the current data")
            else:
                notes.append(f"same test split as the sidecar's metrics: {same[1]}")
        served_version = getattr(ex.dataset, "synthvvi_version", None)
        if served_version is not None and data.get("dataset") == "synthvvi":
            trained_version = int(data.get("synthvvi_version") or 1)  # sidecars before versions existed: v1
            if trained_version != served_version:
                warnings_.append(f"this checkpoint was trained on SynthVVI v{trained_version}, the data shown is "
                                 f"SynthVVI v{served_version}: its figures here are not the ones it was trained "
                                 "for; retrain it, or serve data of its own version")
        config = meta.get("model_config") or {}
        if config.get("num_frames") and int(config["num_frames"]) != ex.num_frames:
            warnings_.append(f"tested with T={ex.num_frames} frames (the protocol's); the model config says "
                             f"T={config['num_frames']}")
        if config.get("test_sampling") and config["test_sampling"] != ex.sampling:
            warnings_.append(f"test sampling is {ex.sampling!r} (the protocol's); the model config says "
                             f"{config['test_sampling']!r}")
        training = dict(meta.get("training") or {})
        return {
            "role": bundle.role,
            "checkpoint": str(bundle.path),
            "weights_sha256": bundle.sha256,
            "sidecar_sha256": recorded,
            "sha256_matches": recorded == bundle.sha256 if recorded else None,
            "model_config": config,
            "is_baseline": bool(getattr(bundle.model.config, "is_baseline", False)),
            "training": training,
            "data": data,
            "metrics_sidecar": meta.get("metrics"),
            "metrics_now": bundle.metrics,
            "dataset": ex.dataset.name,
            "data_fingerprint": ex.fingerprint,
            "test_num_frames": ex.num_frames,
            "test_sampling": ex.sampling,
            "camera_filter": ex.dataset.camera_filter,
            "metric": ex.dataset.metric,
            "reranking": False,
            "notes": list(ex.dataset.notes) + notes,
            "warnings": warnings_,
        }


    def test_fingerprint(self) -> str:
        """The fingerprint of the current data's test split alone (what a sidecar's ``test_fingerprint`` is
        compared with)."""
        from dataclasses import replace

        # torch loads when a model is used, not at import
        from lsmrl.engine.extract import data_fingerprint

        ex = self.explorer
        return ex.lazy("test_fingerprint", lambda: data_fingerprint(replace(ex.dataset, train=[])))

    def _same_test_split(self, data: dict, recorded: dict | None, now: dict) -> tuple[bool, str] | None:
        """(same test split?, why) from the sidecar's ``data`` and metrics; None if nothing to compare."""
        test_fp = data.get("test_fingerprint")
        if test_fp:
            mine = self.test_fingerprint()
            return test_fp == mine, f"test-split fingerprint {test_fp} vs {mine}"
        if not isinstance(recorded, dict) or not now:
            return None
        compared = 0
        for direction, values in now.items():
            old = recorded.get(direction)
            if not isinstance(old, dict):
                return False, f"; the sidecar has no {direction} metrics"
            for key in ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP"):
                if key in old and key in values:
                    if abs(float(old[key]) - float(values[key])) > METRIC_TOLERANCE:
                        return False, f"; {direction} {key} {float(old[key]):.2f} recorded vs {float(values[key]):.2f} now"
                    compared += 1
        if not compared:
            return None
        return True, (f"its fingerprint {data.get('metrics_fingerprint') or data.get('fingerprint')} also covers "
                      "the training split, which this copy does not hold, and all "
                      f"{compared} metrics recomputed here equal the recorded ones")

    def chance(self) -> dict[str, dict[str, float]]:
        """What a random ranking scores, per direction (percent): ``{"mAP", "rank1", "num_queries"}``.

        Exact expectations over random orders of each valid query's gallery after the protocol's camera
        rule (N items, n of them true matches): E[Rank-1] = n/N and E[AP] = H_N/N + (n-1)(N-H_N)/(N(N-1)),
        with H_N the N-th harmonic number (AP averages precision at each true match; precision at rank k
        of a true match is 1/k + (k-1)/k (n-1)/(N-1) in expectation)."""
        ex = self.explorer
        return ex.lazy("chance", self._chance)

    def _chance(self) -> dict[str, dict[str, float]]:
        ex = self.explorer
        pids = np.array([t.pid for t in ex.dataset.test])
        cams = np.array([t.camid for t in ex.dataset.test])
        out = {}
        for direction in ex.directions:
            queries, gallery = (np.asarray(a).reshape(-1) for a in ex.dataset.directions[direction])
            aps, r1s = [], []
            for q in queries:
                keep = np.ones(len(gallery), dtype=bool)
                if ex.dataset.camera_filter:
                    keep = ~((pids[gallery] == pids[q]) & (cams[gallery] == cams[q]))
                big_n = int(keep.sum())
                n = int((pids[gallery][keep] == pids[q]).sum())
                if n == 0 or big_n == 0:
                    continue  # skipped by the metric too
                harmonic = float(np.sum(1.0 / np.arange(1, big_n + 1)))
                ap = harmonic / big_n + ((n - 1) * (big_n - harmonic) / (big_n * (big_n - 1)) if big_n > 1 else 0.0)
                aps.append(ap)
                r1s.append(n / big_n)
            out[direction] = {"mAP": 100 * float(np.mean(aps)) if aps else float("nan"),
                              "rank1": 100 * float(np.mean(r1s)) if r1s else float("nan"), "num_queries": len(aps)}
        return out


#: Two metrics (percent) closer than this are the same measurement (sidecars round nothing; float noise only).
METRIC_TOLERANCE = 0.05

__all__ = ["DRAWS_EVIDENCE_GLOB", "DrawFigure", "DrawLead", "DrawsEvidence", "DrawsRow", "DrawsStanding",
           "METRIC_TOLERANCE", "Provenance", "find_draws", "read_draws"]
