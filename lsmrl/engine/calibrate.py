"""Post-training calibration: what the model uses at test time, re-estimated from a clean eval-mode pass.

During stage 2 the CMI memory is an exponential moving average of *training-mode* features: augmented
(flipped, cropped, and, in the demo recipe, 75% of the visible tracklets grey or single-channel) and taken
while the encoder was still changing. The residual centres of SD and CMI and the BNNeck's running
statistics are averages of the same kind. :func:`calibrate_modules` replaces all of them with statistics
of the final model on the training set, sampled as at test time (T frames, ``evenly``) with no
augmentation:

1. the STFL features of every training tracklet;
2. SD's per-modality residual centre (its mean uncentred residual), then the SD features;
3. the CMI memory: per identity and modality the mean SD feature (what the test-time memory stands for);
4. CMI's per-modality residual centre against that memory, then the CMI features;
5. the BNNeck's running mean and variance of those features ("precise BN").

The trainer calls it at the end of stage 2; ``python -m lsmrl calibrate --checkpoint C --data-root D``
applies it to an existing checkpoint (and rewrites it, keeping its sidecar's sections).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from tqdm import tqdm

from lsmrl.data.registry import build_dataset
from lsmrl.device import get_device
from lsmrl.engine.data import eval_loader, label_map
from lsmrl.engine.precision import training_precision
from lsmrl.model.checkpoint import load_model, read_checkpoint_meta, save_checkpoint
from lsmrl.model.lsmrl import LSMRL
from lsmrl.model.semantic_diffusion import GeneratedPromptDiffusion


@torch.no_grad()
def calibrate_modules(model: LSMRL, tracklets, labels: dict[int, int], num_frames: int | None = None,
                      sampling: str = "evenly", batch_size: int = 32, device=None, mixed_precision: bool = True,
                      progress: bool = True) -> dict:
    """Re-estimate the CMI memory, the SD/CMI residual centres and the BNNeck statistics (module docstring).

    ``tracklets``: the training tracklets; ``labels``: their pid -> training label map (the memory rows).
    Returns a summary (counts and the share of memory rows filled).
    """
    device = device or next(model.parameters()).device
    num_frames = num_frames or model.config.num_frames
    precision = training_precision(device, mixed_precision)
    model.eval()
    loader = eval_loader(tracklets, num_frames, model.config.image_size, sampling, batch_size, labels=labels)
    stfl, sd_raw, modalities, targets = [], [], [], []
    generated = isinstance(model.semantic_diffusion, GeneratedPromptDiffusion)
    for batch in tqdm(loader, desc="calibrating (clean pass over the training set)", unit="batch",
                      disable=not progress):
        frames, mods = batch["frames"].to(device), batch["modalities"].to(device)
        with precision.autocast():
            out = model.stfl(frames)
            if generated:
                sd_raw.append(model.sd_residual(out, mods)["residual"].float())
        stfl.append(out["sequence"].float())
        modalities.append(mods)
        targets.append(batch["labels"].to(device))
    features, modalities, targets = torch.cat(stfl), torch.cat(modalities), torch.cat(targets)

    if generated:  # SD: centre = mean raw residual per modality; then the SD features
        sd = model.semantic_diffusion
        residual = torch.cat(sd_raw)
        for modality in (0, 1):
            rows = modalities == modality
            if rows.any():
                sd.centre.set_mean(modality, residual[rows].mean(0))
        features = features + sd.gate.float() * (residual - sd.centre.mean[modalities])
    elif model.semantic_diffusion is not None:  # the "bank" SD has no centre: run it as it is
        features = torch.cat([model.semantic_diffusion(chunk)[0].float() for chunk in features.split(256)])

    summary = {"tracklets": int(len(features))}
    cmi = model.cross_modal
    if cmi is not None:
        memory = torch.zeros_like(cmi.memory)
        filled = torch.zeros_like(cmi.filled)
        for modality in (0, 1):
            for label in targets[modalities == modality].unique():
                rows = (modalities == modality) & (targets == label)
                memory[modality, label] = features[rows].mean(0)
                filled[modality, label] = True
        cmi.set_memory(memory, filled)
        summary["memory_filled"] = round(float(filled.float().mean()), 4)
        attended, _, active = cmi.attend(features, modalities)
        if cmi.centre is not None:
            for modality in (0, 1):
                rows = (modalities == modality) & active
                if rows.any():
                    cmi.centre.set_mean(modality, attended[rows].mean(0))
        features = torch.cat([cmi(f, m)[0].float() for f, m in zip(features.split(256), modalities.split(256))])

    bn = model.neck.bn  # precise BN: the statistics of the final features, unbiased variance as BatchNorm keeps
    bn.running_mean.copy_(features.mean(0))
    bn.running_var.copy_(features.var(0, unbiased=True))
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="an LSMRL .safetensors checkpoint (rewritten in place "
                                                             "unless --out is given)")
    parser.add_argument("--data-root", required=True, help="the data set the checkpoint was trained on")
    parser.add_argument("--dataset", default="synthvvi", choices=["synthvvi", "hitsz-vcm", "buptcampus"])
    parser.add_argument("--out", default=None, help="write the calibrated checkpoint here instead")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default=None)


def run(args: argparse.Namespace) -> int:
    model, _ = load_model(args.checkpoint, get_device(args.device))
    meta = read_checkpoint_meta(args.checkpoint)
    dataset = build_dataset(args.dataset, args.data_root)
    labels = label_map(dataset.train)
    if len(labels) != model.config.num_classes:
        raise SystemExit(f"error: {args.data_root} has {len(labels)} training identities, the checkpoint "
                         f"{model.config.num_classes}: not the data it was trained on")
    start = time.time()
    summary = calibrate_modules(model, dataset.train, labels, batch_size=args.batch_size)
    summary["wall_time_s"] = round(time.time() - start, 1)
    sections = {k: v for k, v in meta.items() if k not in ("format", "model_config", "weights_sha256")}
    sections["calibration"] = summary
    sections["metrics"] = None  # the figures were of the uncalibrated weights: re-run eval --record
    out = save_checkpoint(model, Path(args.out or args.checkpoint), **sections)
    print(f"calibrated {summary}; wrote {out} (metrics cleared: run `python -m lsmrl eval --record`)")
    return 0
