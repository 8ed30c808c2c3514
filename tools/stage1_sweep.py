"""Stage 1 to convergence: prompt_top1_train for several stage-1 recipes on one cache of frozen features.

    python tools/stage1_sweep.py --clip-weights runs/clip.safetensors --data-root data/synthvvi \
        --json checkpoints/evidence/stage1_sweep.json --variant steps=400,lr=3.5e-4,negatives=batch \
        --variant steps=2000,lr=3e-3,negatives=all

Builds the model of the recipe (``--config``, default mini_synthvvi.yaml) on the given CLIP exactly as
``lsmrl.engine.trainer.train`` does, caches the STFL features of ``stage1.feature_passes`` augmented passes
once, then trains the identity prompts of each variant from the same initial prompts and reports the share of
cached features whose nearest prompt is their own identity's (``prompt_top1_train``), with the seconds each
variant took and the CPU it ran on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lsmrl.config import load_config  # noqa: E402
from lsmrl.data.registry import build_dataset  # noqa: E402
from lsmrl.device import cpu_name, get_device, seed_everything  # noqa: E402
from lsmrl.engine.data import TrackletClips, label_map  # noqa: E402
from lsmrl.engine.frame_bank import FrameBank  # noqa: E402
from lsmrl.engine.precision import training_precision  # noqa: E402
from lsmrl.engine.stage1 import cache_image_features, prompt_retrieval_accuracy, train_prompts  # noqa: E402
from lsmrl.engine.trainer import build_model  # noqa: E402


def parse_variant(text: str) -> dict:
    values = {}
    for pair in text.split(","):
        key, _, value = pair.partition("=")
        values[key.strip()] = value.strip()
    casts = {"steps": int, "lr": float, "batch_size": int, "negatives": str, "warmup_steps": int}
    unknown = set(values) - set(casts)
    if unknown:
        raise SystemExit(f"unknown variant keys {sorted(unknown)}; known: {sorted(casts)}")
    return {key: casts[key](value) for key, value in values.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip-weights", required=True)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--config", default="mini_synthvvi.yaml")
    parser.add_argument("--variant", action="append", required=True, help="key=value,... over the stage1 section")
    parser.add_argument("--json", required=True)
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)

    config = load_config(args.config, [f"data.root={args.data_root}"])
    seed_everything(config.seed)
    device = get_device(args.device)
    dataset = build_dataset(config.data.dataset, args.data_root)
    labels = label_map(dataset.train)
    model = build_model(config, len(labels), args.clip_weights, [t.caption for t in dataset.train if t.caption])
    model.to(device)
    image_size, num_frames = tuple(model.config.image_size), model.config.num_frames
    start = time.time()
    bank = FrameBank(dataset.train, image_size)
    clips = TrackletClips(dataset.train, num_frames, image_size, train=True, labels=labels,
                          flip_prob=config.data.flip_prob, padding=config.data.padding, bank=bank)
    precision = training_precision(device, config.amp)
    features, feature_labels, _ = cache_image_features(model, clips, config.stage1.feature_passes, config.seed,
                                                       device, precision=precision)
    cache_s = time.time() - start
    initial = model.prompt_learner.identity_context.detach().clone()
    results = []
    for text in args.variant:
        stage1 = replace(config.stage1, **parse_variant(text))
        with torch.no_grad():
            model.prompt_learner.identity_context.copy_(initial)
        begin = time.time()
        records = train_prompts(model, features, feature_labels, stage1, config.seed, device)
        top1 = prompt_retrieval_accuracy(model, features, feature_labels)
        results.append({"variant": text, "stage1": asdict(stage1), "prompt_top1_train": round(top1, 4),
                        "final_loss": records[-1]["loss"], "seconds": round(time.time() - begin, 1)})
        print(f"{text}: prompt_top1_train {top1:.3f} ({results[-1]['seconds']} s)")
    report = {"command": "python tools/stage1_sweep.py " + " ".join(argv or sys.argv[1:]),
              "clip_weights": args.clip_weights, "cpu": cpu_name(), "precision": precision.name,
              "cached_features": int(features.shape[0]), "identities": len(labels), "cache_s": round(cache_s, 1),
              "results": results}
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
