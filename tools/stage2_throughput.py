"""Stage-2 seconds a step, side by side in one run: frames from disk or from RAM, precisions, frozen blocks.

    python tools/stage2_throughput.py --data-root data/synthvvi --clip-weights runs/clip.safetensors \
        --steps 20 --json checkpoints/evidence/stage2_throughput.json

Each variant builds the recipe's model (``--config``, default mini_synthvvi.yaml) the way
``lsmrl.engine.trainer.train`` does and runs ``--steps`` stage-2 steps after ``--warmup`` untimed ones, timing
the data loading (the next batch) apart from the forward, backward and optimiser step. Variants run one after
the other in the same process, in rounds (A B C A B C ...) so that a change of load hits all of them; the CPU's
name and the measured bf16 matmul speed-up go with the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lsmrl.config import load_config  # noqa: E402
from lsmrl.data.registry import build_dataset  # noqa: E402
from lsmrl.device import bf16_matmul_speedup, cpu_name, get_device, seed_everything  # noqa: E402
from lsmrl.engine.data import label_map, train_loader  # noqa: E402
from lsmrl.engine.frame_bank import FrameBank  # noqa: E402
from lsmrl.engine.precision import training_precision  # noqa: E402
from lsmrl.engine.stage2 import Stage2Losses, build_optimizer, set_trainable  # noqa: E402
from lsmrl.engine.trainer import build_model  # noqa: E402

#: name -> (frames in RAM, precision, frozen lower blocks)
VARIANTS = {
    "disk, auto precision": (False, "auto", 0),
    "ram, auto precision": (True, "auto", 0),
    "ram, fp32": (True, "fp32", 0),
    "ram, auto precision, 3 blocks frozen": (True, "auto", 3),
}


class Runner:
    def __init__(self, config, dataset, labels, clip_weights, device, bank, frames_in_ram, precision, frozen):
        self.config = replace(config, stage2=replace(config.stage2, freeze_blocks=frozen))
        self.model = build_model(self.config, len(labels), clip_weights,
                                 [t.caption for t in dataset.train if t.caption]).to(device)
        if self.model.prompt_learner is not None:  # stage 1's prompts are untrained here: timing only
            self.model.refresh_prompt_bank()
        set_trainable(self.model, self.config.stage2)
        self.optimizer, _ = build_optimizer(self.model, self.config.stage2)
        self.losses = Stage2Losses(self.model, self.config)
        self.precision = training_precision(device, requested=precision)
        loader = train_loader(dataset.train, labels, tuple(self.model.config.image_size), self.config.data,
                              self.config.seed, num_frames=self.model.config.num_frames,
                              bank=bank if frames_in_ram else None)
        self.batches = iter(loader)
        self.device = device
        self.model.train()
        self.data_s: list[float] = []
        self.compute_s: list[float] = []

    def step(self, record: bool) -> None:
        start = time.perf_counter()
        batch = next(self.batches)
        loaded = time.perf_counter()
        frames = batch["frames"].to(self.device)
        target, modalities = batch["labels"].to(self.device), batch["modalities"].to(self.device)
        with self.precision.autocast():
            out = self.model(frames, modalities, labels=target)
        loss = self.config.losses.total(self.losses(out, target, modalities))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        done = time.perf_counter()
        if record:
            self.data_s.append(loaded - start)
            self.compute_s.append(done - loaded)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--clip-weights", default=None, help="pretrained CLIP (default: random init)")
    parser.add_argument("--config", default="mini_synthvvi.yaml")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--json", required=True)
    parser.add_argument("overrides", nargs="*", help="dotted overrides of the recipe")
    args = parser.parse_args(argv)

    config = load_config(args.config, list(args.overrides) + [f"data.root={args.data_root}"])
    seed_everything(config.seed)
    device = get_device()
    dataset = build_dataset(config.data.dataset, args.data_root)
    labels = label_map(dataset.train)
    start = time.time()
    bank = FrameBank(dataset.train, tuple(config.model.image_size))
    bank_s = time.time() - start
    runners = {name: Runner(config, dataset, labels, args.clip_weights, device, bank, *VARIANTS[name])
               for name in args.variants}
    for number in range(args.warmup + args.steps):
        for runner in runners.values():
            runner.step(record=number >= args.warmup)
    results = {}
    for name, runner in runners.items():
        data, compute = statistics.median(runner.data_s), statistics.median(runner.compute_s)
        results[name] = {"precision": runner.precision.name, "data_s_median": round(data, 4),
                         "compute_s_median": round(compute, 4), "step_s_median": round(data + compute, 4)}
    base = results.get("disk, auto precision")
    for figures in results.values():
        if base:
            figures["speedup_vs_disk"] = round(base["step_s_median"] / figures["step_s_median"], 2)
    report = {"command": "python tools/stage2_throughput.py " + " ".join(argv or sys.argv[1:]), "cpu": cpu_name(),
              "bf16_matmul_speedup": round(bf16_matmul_speedup(), 2), "torch_threads": torch.get_num_threads(),
              "steps": args.steps, "batch": f"{config.data.identities_per_batch} identities x "
              f"{2 * config.data.tracklets_per_modality} tracklets x {config.model.num_frames} frames at "
              f"{config.model.image_size[0]}x{config.model.image_size[1]}",
              "frame_bank_s": round(bank_s, 1), "frame_bank_mb": round(bank.nbytes / 2**20, 1), "variants": results}
    for name, figures in results.items():
        print(f"{name:40s} {figures['step_s_median']:.3f} s a step (data {figures['data_s_median']:.3f}, "
              f"compute {figures['compute_s_median']:.3f}, {figures['precision']})")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
