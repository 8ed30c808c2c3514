"""``python -m lsmrl train-demo``: the embedded demo model from scratch, in one command.

Pretraining of the miniature CLIP (:mod:`lsmrl.engine.pretrain_clip`, the config's ``pretrain`` section),
then :func:`lsmrl.engine.trainer.train`: stage 1 (prompts), stage 2, the calibration pass (CMI memory,
residual centres, BNNeck statistics) and the evaluation on the test split. Layout of ``--out``::

    OUT/clip.safetensors (+ .json, .log.jsonl)   the pretrained CLIP, shared by the full model and the baseline
    OUT/full/model.safetensors (+ .json)          LSMRL (or OUT/baseline/ with --baseline)

The CLIP is reused when ``OUT/clip.safetensors`` exists (train the full model, then ``--baseline`` on the
same CLIP: the same budget and the same starting point). The wall time of every stage goes into the
model's sidecar (``demo.timings``) and ``OUT/<run>/demo.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from lsmrl.config import CONFIG_DIR, load_config
from lsmrl.engine.pretrain_clip import pretrain_clip, read_clip_sidecar
from lsmrl.engine.trainer import train
from lsmrl.evaluation.protocols import format_metrics_table
from lsmrl.model.checkpoint import read_checkpoint_meta, write_checkpoint_meta

BASELINE_CONFIG = CONFIG_DIR / "ablation" / "1_baseline.yaml"
BASELINE_SWITCHES = ("grouped", "shift", "sd", "cmi", "i2t", "modality_losses")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-root", required=True, help="SynthVVI root (python -m lsmrl synth)")
    parser.add_argument("--out", required=True, help="demo directory (see the module docstring)")
    parser.add_argument("--config", default="mini_synthvvi.yaml", help="the recipe (default: mini_synthvvi.yaml)")
    parser.add_argument("--baseline", action="store_true",
                        help="train the frame-wise CLIP baseline (ablation row 1 on the same recipe) into OUT/baseline")
    parser.add_argument("--clip-weights", default=None, help="use these CLIP weights instead of pretraining")
    parser.add_argument("--device", default=None)
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. stage2.steps=100 pretrain.steps=50")


def run(args: argparse.Namespace) -> int:
    summary = train_demo(args.data_root, args.out, args.config, args.baseline, args.clip_weights, args.device,
                         list(args.overrides))
    if summary.get("metrics"):
        print(format_metrics_table(summary["metrics"]))
    print(json.dumps(summary["timings"], indent=2))
    print(f"checkpoint: {summary['checkpoint']}")
    return 0


def train_demo(data_root: str, out: str | Path, config_name: str = "mini_synthvvi.yaml", baseline: bool = False,
               clip_weights: str | None = None, device: str | None = None, overrides: list[str] | None = None) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    overrides = list(overrides or []) + [f"data.root={data_root}"]
    if baseline:  # the chosen recipe with the switches of ablation row 1 (the same budget otherwise)
        row = load_config(BASELINE_CONFIG, [])
        overrides += [f"model.{key}={str(getattr(row.model, key)).lower()}" for key in BASELINE_SWITCHES]
    config = load_config(config_name, overrides)
    timings: dict[str, float] = {}
    start = time.time()
    if clip_weights is None:
        clip_weights = str(out / "clip.safetensors")
        if read_clip_sidecar(clip_weights) is not None:
            print(f"pretraining: reusing {clip_weights}")
            timings["pretrain_s_reused"] = read_clip_sidecar(clip_weights).get("wall_time_s")
        else:
            summary = pretrain_clip(data_root, clip_weights, config.pretrain, config.model.clip_model,
                                    tuple(config.pretrain.image_size), config.seed, device,
                                    log_path=Path(clip_weights).with_suffix(".log.jsonl"))
            timings["pretrain_s"] = summary["wall_time_s"]
            timings["pretrain_s_per_step"] = summary["seconds_per_step"]
    run_dir = out / ("baseline" if baseline else "full")
    summary = train(config, run_dir, clip_weights, device=device)
    timings.update(summary["timings"])
    timings["total_s"] = round(time.time() - start, 1)
    checkpoint = run_dir / "model.safetensors"
    meta = read_checkpoint_meta(checkpoint)
    clip_sidecar = read_clip_sidecar(clip_weights)
    if clip_sidecar is not None:  # the recipe the CLIP was really pretrained with, not the config's section
        meta["training"]["config"]["pretrain"] = clip_sidecar["pretrain"]
    meta["demo"] = {"timings": timings, "clip_weights": str(clip_weights), "baseline": baseline,
                    "config": str(config_name)}
    write_checkpoint_meta(checkpoint, meta)
    (run_dir / "demo.json").write_text(json.dumps(meta["demo"], indent=2) + "\n")
    return {"checkpoint": str(checkpoint), "timings": timings, "metrics": summary.get("metrics")}
