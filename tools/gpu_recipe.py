"""The whole demo recipe at GPU scale in one command, everything written under one folder.

    python tools/gpu_recipe.py --out runs/gpu                 # CUDA: 2,000 identities, 128x64, longer schedule
    python tools/gpu_recipe.py --out runs/tiny --budget tiny  # the same steps on a CPU in about a minute (tested)

Steps, each a ``python -m lsmrl`` command run in this process (the command lines go into ``OUT/recipe.json``):

1. ``synth``: SynthVVI v2, seed 0, the budget's training identities + 100 test identities; a validation draw
   (seed 7, test identities only) for tuning.
2. ``pretrain-clip``: the miniature CLIP (colour captions for visible frames, colour-free ones for infrared:
   the shared-caption recipe measured worse for retrieval on the CPU, checkpoints/README.md), probed on the
   validation draw.
3. ``ablation --seeds 0 1 2``: the five main rows (frame-wise baseline ... full LSMRL) once per seed with the
   same CLIP and budget, validation mAP in every run log.
4. ``eval-draws``: seed 0's full model against seed 0's baseline on five fresh draws nobody tuned on
   (seeds 101-105), the paired difference with its 95% interval.
5. ``language-probe`` of the full model on the validation draw and the test split.

The budgets are starting points for one H100/H200 (about ten minutes is the aim; it has not been run on one
yet); a checkpoint from this recipe replaces the demo only if it wins on the validation draw and stays under
10 MiB a file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lsmrl.cli import main as lsmrl_main  # noqa: E402
from lsmrl.device import cpu_name, get_device  # noqa: E402


@dataclass(frozen=True)
class Budget:
    train_identities: int
    test_identities: int
    draw_identities: int
    frames: str
    image_size: tuple[int, int]
    pretrain_steps: int
    pretrain_batch: int
    probe_every: int
    stage1_steps: int
    stage2_steps: int
    validate_every: int
    seeds: tuple[int, ...]
    draw_seeds: tuple[int, ...]
    synth_workers: int


BUDGETS = {
    "gpu": Budget(train_identities=2000, test_identities=100, draw_identities=100, frames="16-32", image_size=(128, 64),
                  pretrain_steps=6000, pretrain_batch=256, probe_every=1000, stage1_steps=1500, stage2_steps=4000,
                  validate_every=500, seeds=(0, 1, 2), draw_seeds=(101, 102, 103, 104, 105), synth_workers=16),
    "tiny": Budget(train_identities=4, test_identities=4, draw_identities=3, frames="12", image_size=(64, 32),
                   pretrain_steps=2, pretrain_batch=8, probe_every=1, stage1_steps=2, stage2_steps=2,
                   validate_every=1, seeds=(0,), draw_seeds=(101, 102), synth_workers=1),
}


def commands(out: Path, budget: Budget, device: str | None) -> list[list[str]]:
    data, val, clip = out / "data" / "synthvvi", out / "data" / "val7", out / "clip.safetensors"
    height, width = budget.image_size
    device_args = ["--device", device] if device else []
    synth = ["--frames", budget.frames, "--workers", str(budget.synth_workers), "--no-progress", "--overwrite"]
    recipe = [f"model.image_size=[{height},{width}]", f"stage1.steps={budget.stage1_steps}", "stage1.negatives=all",
              "stage1.lr=3e-3", f"stage2.steps={budget.stage2_steps}", f"stage2.validate_every={budget.validate_every}",
              f"stage2.checkpoint_every={budget.stage2_steps}", f"data.val_root={val}"]
    if budget.train_identities < 8:  # a tiny run: batches that its few identities can fill
        recipe += ["data.identities_per_batch=2", "data.tracklets_per_modality=1", "model.num_frames=2",
                   "stage1.batch_size=8", "stage1.feature_passes=1"]
    full = out / "ablation" / f"seed{budget.seeds[0]}" / "5_full" / "model.safetensors"
    baseline = out / "ablation" / f"seed{budget.seeds[0]}" / "1_baseline" / "model.safetensors"
    return [
        ["synth", "--out", str(data), "--seed", "0", "--train-identities", str(budget.train_identities),
         "--test-identities", str(budget.test_identities), *synth],
        ["synth", "--out", str(val), "--seed", "7", "--train-identities", "0",
         "--test-identities", str(budget.draw_identities), *synth],
        ["pretrain-clip", "--data-root", str(data), "--out", str(clip), "--image-size", str(height), str(width),
         "--steps", str(budget.pretrain_steps), "--batch-size", str(budget.pretrain_batch), "--caption-mode",
         "modality", "--probe-root", str(val), "--probe-every", str(budget.probe_every), *device_args],
        ["ablation", "--data-root", str(data), "--clip-weights", str(clip), "--out", str(out / "ablation"),
         "--seeds", *map(str, budget.seeds), *device_args, *recipe],
        ["eval-draws", "--checkpoint", str(full), "--compare", str(baseline), "--seeds", *map(str, budget.draw_seeds),
         "--identities", str(budget.draw_identities), "--cache", str(out / "data" / "draws"), "--json",
         str(out / "eval_draws.json"), *device_args],
        ["language-probe", "--checkpoint", str(full), "--data-root", str(val), "--json",
         str(out / "language_probe_val7.json"), *device_args],
        ["language-probe", "--checkpoint", str(full), "--data-root", str(data), "--json",
         str(out / "language_probe_test.json"), *device_args],
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--budget", choices=list(BUDGETS), default="gpu")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    budget = BUDGETS[args.budget]
    log = {"budget": args.budget, "device": str(get_device(args.device)), "cpu": cpu_name(), "steps": []}
    try:
        import torch

        if torch.cuda.is_available():
            log["gpu"] = torch.cuda.get_device_name(0)
    except Exception:  # the record is a courtesy: no GPU name is not an error
        pass
    for command in commands(out, budget, args.device):
        start = time.time()
        code = lsmrl_main(command)
        log["steps"].append({"command": "python -m lsmrl " + " ".join(command), "exit": code,
                             "seconds": round(time.time() - start, 1)})
        (out / "recipe.json").write_text(json.dumps(log, indent=2) + "\n")
        if code:
            print(f"stopped: `{log['steps'][-1]['command']}` exited with {code}", file=sys.stderr)
            return code
    print(f"done: {out / 'recipe.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
