"""``python -m lsmrl eval-draws``: a model's standing across fresh SynthVVI draws that nobody trained or tuned on.

One 100-identity draw is not enough to rank two models: on SynthVVI v2 the same model moved by up to 6 mAP
between draws and a +5.8 lead on one draw was -4.7 on another. So a headline figure is a mean over several
draws, each generated from its own seed with no training identities (``synth --seed S --train-identities 0
--test-identities N``), with the sample standard deviation over draws. With ``--compare`` both models are
evaluated on the same draws and the **paired** difference (model minus comparison, per draw) gets a 95%
interval from Student's t with ``draws - 1`` degrees of freedom: the draw-to-draw variation that both models
share cancels in the pairing.

Draws are cached under ``--cache`` (one folder per SynthVVI version, seed and size; a folder is reused only
when its generation finished). Every draw also gets the within-modality diagnostic
(:func:`lsmrl.evaluation.protocols.within_modality_metrics`). Choose seeds that no tuning used: the committed
test split is seed 0, and a validation draw for tuning should have a seed of its own.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
from scipy.stats import t as student_t

from lsmrl.data.registry import build_dataset
from lsmrl.data.tracklet import DIRECTIONS
from lsmrl.device import PRECISIONS, cpu_name, get_device, inference_precision
from lsmrl.engine.extract import data_fingerprint, evaluate_model
from lsmrl.errors import LSMRLError
from lsmrl.evaluation.protocols import within_modality_metrics
from lsmrl.model.checkpoint import load_model
from lsmrl.synth.generate import generate_synthvvi
from lsmrl.synth.writer import SYNTHVVI_VERSION

#: The figures that are summarised over draws (percent).
SUMMARY_METRICS = ("rank1", "mAP")
#: The mean of the two directions, reported beside each of them.
BOTH = "both_directions"
_COMPLETE = ".eval-draws-complete"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="the model to evaluate (.safetensors with its sidecar)")
    parser.add_argument("--compare", default=None, help="a second checkpoint evaluated on the same draws (e.g. the "
                        "baseline): the paired difference checkpoint - compare gets a 95%% interval")
    parser.add_argument("--seeds", type=int, nargs="+", required=True, help="one draw per seed (not 0: the test split)")
    parser.add_argument("--identities", type=int, default=100, help="test identities per draw (default: 100)")
    parser.add_argument("--json", required=True, help="output: per draw, mean and sd, paired difference")
    parser.add_argument("--cache", default="data/draws", help="where generated draws are kept (default: data/draws)")
    parser.add_argument("--workers", type=int, default=None, help="processes for generating a draw")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default=None)
    parser.add_argument("--precision", default="auto", choices=list(PRECISIONS))


def run(args: argparse.Namespace) -> int:
    report = eval_draws(args.checkpoint, args.seeds, args.identities, args.cache, args.compare, args.device,
                        args.precision, args.batch_size, args.workers)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(format_report(report))
    print(f"written: {out}")
    return 0


def draw_root(cache: str | Path, seed: int, identities: int) -> Path:
    return Path(cache) / f"synthvvi-v{SYNTHVVI_VERSION}-seed{seed}-ids{identities}"


def ensure_draw(cache: str | Path, seed: int, identities: int, workers: int | None = None) -> Path:
    """The folder of one draw: generated the first time (test split only), reused once complete."""
    root = draw_root(cache, seed, identities)
    if not (root / _COMPLETE).is_file():
        generate_synthvvi(root, seed=seed, train_identities=0, test_identities=identities, workers=workers,
                          overwrite=True, progress=False)
        (root / _COMPLETE).write_text(json.dumps({"seed": seed, "identities": identities}) + "\n")
    return root


def eval_draws(checkpoint: str | Path, seeds: list[int], identities: int = 100, cache: str | Path = "data/draws",
               compare: str | Path | None = None, device: str | None = None, precision: str = "auto",
               batch_size: int = 16, workers: int | None = None) -> dict:
    if len(set(seeds)) != len(seeds):
        raise LSMRLError(f"--seeds repeats a seed: {seeds}; each draw needs its own")
    if identities < 2:
        raise LSMRLError(f"--identities must be at least 2, got {identities}")
    device = get_device(device)
    models = {"model": load_model(checkpoint, device)}
    if compare:
        models["compare"] = load_model(compare, device)
    chosen = inference_precision(precision, device)
    draws = []
    for seed in seeds:
        start = time.time()
        dataset = build_dataset("synthvvi", str(ensure_draw(cache, seed, identities, workers)))
        draw = {"seed": seed, "data_fingerprint": data_fingerprint(dataset)}
        for role, (model, _) in models.items():
            metrics, features, _ = evaluate_model(model, dataset, batch_size=batch_size, progress=False,
                                                  precision=chosen)
            draw[role] = _with_both(metrics)
            within = within_modality_metrics(features["embedding"], dataset, metric=dataset.metric)
            draw[f"{role}_within_modality"] = {name: {key: round(float(value), 4) for key, value in figures.items()}
                                               for name, figures in within.items()}
        draw["seconds"] = round(time.time() - start, 1)
        draws.append(draw)
        print(f"draw seed {seed}: " + ", ".join(f"{role} mAP {draw[role][BOTH]['mAP']:.1f}" for role in models))
    report = {
        "command": "python -m lsmrl eval-draws",
        "checkpoint": _describe(checkpoint, models["model"][1]),
        "compare": _describe(compare, models["compare"][1]) if compare else None,
        "identities": identities, "seeds": list(seeds), "synthvvi_version": SYNTHVVI_VERSION,
        "precision": chosen, "cpu": cpu_name(), "draws": draws,
        "summary": {role: summarise([d[role] for d in draws]) for role in models},
    }
    if compare:
        report["difference"] = paired_difference([d["model"] for d in draws], [d["compare"] for d in draws])
    return report


def _describe(path, meta: dict) -> dict:
    return {"path": str(path), "weights_sha256": meta.get("weights_sha256")}


def _with_both(metrics: dict) -> dict:
    out = {name: {key: round(float(value), 4) for key, value in metrics[name].items()} for name in DIRECTIONS
           if name in metrics}
    out[BOTH] = {key: round(float(np.mean([out[name][key] for name in DIRECTIONS])), 4) for key in SUMMARY_METRICS}
    return out


def summarise(per_draw: list[dict]) -> dict:
    """Mean and sample standard deviation (``n - 1``; None for one draw) of each figure over the draws."""
    out = {}
    for name in (*DIRECTIONS, BOTH):
        out[name] = {}
        for key in SUMMARY_METRICS:
            values = np.array([draw[name][key] for draw in per_draw], float)
            out[name][key] = {"mean": round(float(values.mean()), 2),
                              "sd": round(float(values.std(ddof=1)), 2) if len(values) > 1 else None,
                              "n": len(values)}
    return out


def paired_difference(model: list[dict], compare: list[dict]) -> dict:
    """Per figure: the per-draw differences, their mean and the 95% t interval of the mean (None for one draw)."""
    out = {}
    for name in (*DIRECTIONS, BOTH):
        out[name] = {}
        for key in SUMMARY_METRICS:
            diffs = np.array([a[name][key] - b[name][key] for a, b in zip(model, compare)], float)
            mean = float(diffs.mean())
            interval = None
            if len(diffs) > 1:
                half = float(student_t.ppf(0.975, len(diffs) - 1) * diffs.std(ddof=1) / math.sqrt(len(diffs)))
                interval = [round(mean - half, 2), round(mean + half, 2)]
            out[name][key] = {"per_draw": [round(float(d), 2) for d in diffs], "mean": round(mean, 2),
                              "ci95": interval}
    return out


def format_report(report: dict) -> str:
    lines = [f"{len(report['seeds'])} draws of {report['identities']} identities (seeds {report['seeds']}), "
             f"{report['precision']} on {report['cpu']}"]
    for role, summary in report["summary"].items():
        for name in (*DIRECTIONS, BOTH):
            cells = [f"{key} {summary[name][key]['mean']:.1f} (sd {_num(summary[name][key]['sd'])})"
                     for key in SUMMARY_METRICS]
            lines.append(f"{role:8s} {name:20s} " + " | ".join(cells))
    for name, figures in (report.get("difference") or {}).items():
        cells = [f"{key} {figures[key]['mean']:+.1f} (95% CI {figures[key]['ci95']})" for key in SUMMARY_METRICS]
        lines.append(f"{'lead':8s} {name:20s} " + " | ".join(cells))
    return "\n".join(lines)


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.1f}"
