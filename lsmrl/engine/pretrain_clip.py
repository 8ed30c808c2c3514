"""``python -m lsmrl pretrain-clip``: contrastive pretraining of the miniature CLIP on SynthVVI.

No pretrained CLIP weights can be downloaded here, so the embedded default
starts from a miniature open_clip model (``lsmrl-mini``) trained on SynthVVI
train frames of both modalities and their captions (design.md §3): infrared
frames with their colour-free captions, visible frames with full captions.
The word vocabulary is built from the train captions (plus the attribute-probe
captions and the prompt templates) and saved in the JSON sidecar.

Afterwards, zero-shot attribute accuracy on the *test* identities shows that
the language space means something (see :mod:`lsmrl.engine.zero_shot`).

The recipe runs at SynthVVI's native 128x64 (patch 8: a 16x8 grid, so straps, hat brims and hands are
not lost inside one patch) in bf16 autocast where it measures faster than fp32 on this machine
(:mod:`lsmrl.engine.precision`; ``--fp32`` or ``LSMRL_PRECISION=fp32`` force fp32). Each step draws one random
frame of each picked tracklet, whatever the tracklet's length (SynthVVI v2: 16-32 frames).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from tqdm import tqdm

from lsmrl.config import PretrainConfig
from lsmrl.data.registry import build_dataset
from lsmrl.data.sampling import build_transform, load_tracklet
from lsmrl.data.tracklet import VISIBLE
from lsmrl.device import get_device, seed_everything
from lsmrl.engine.data import to_grayscale
from lsmrl.engine.frame_bank import FrameBank, augment_batch
from lsmrl.engine.optim import adamw, warmup_cosine
from lsmrl.engine.precision import precision_record, training_precision
from lsmrl.engine.step_log import StepLog
from lsmrl.engine.zero_shot import (
    MODALITIES,
    clip_view,
    colour_free_captions,
    probe_language,
    probe_texts,
    zero_shot_attribute_accuracy,
)
from lsmrl.errors import LSMRLError
from lsmrl.losses.clip import clip_contrastive_loss
from lsmrl.model.backbone import BackboneConfig, build_clip, clip_model_config
from lsmrl.model.tokenizer import WordTokenizer
from lsmrl.synth.captions import drop_clauses

CLIP_FORMAT = "lsmrl-clip-1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-root", required=True, help="SynthVVI root (python -m lsmrl synth)")
    parser.add_argument("--out", required=True, help="output weights, e.g. checkpoints/clip-mini.safetensors")
    parser.add_argument("--clip-model", default="lsmrl-mini")
    parser.add_argument("--image-size", type=int, nargs=2, default=PretrainConfig.image_size, metavar=("H", "W"),
                        help="frame size (default 128 64: SynthVVI's native size, a 16x8 patch grid)")
    parser.add_argument("--steps", type=int, default=PretrainConfig.steps)
    parser.add_argument("--batch-size", type=int, default=PretrainConfig.batch_size)
    parser.add_argument("--lr", type=float, default=PretrainConfig.lr)
    parser.add_argument("--warmup-steps", type=int, default=PretrainConfig.warmup_steps)
    parser.add_argument("--visible-grayscale-prob", type=float, default=PretrainConfig.visible_grayscale_prob,
                        help="share of visible frames shown in grey with the colour-free caption (default 0)")
    parser.add_argument("--caption-mode", choices=("modality", "shared"), default=PretrainConfig.caption_mode,
                        help="modality: visible frames meet colour captions, infrared colour-free ones; shared: both "
                             "meet the colour-free caption, visible frames also their colour caption, and an "
                             "identity's captions are positives for all its frames (default: %(default)s)")
    parser.add_argument("--visible-full-caption-prob", type=float, default=PretrainConfig.visible_full_caption_prob,
                        help="shared mode: share of visible frames that meet their colour caption (default: %(default)s)")
    parser.add_argument("--clause-dropout", type=float, default=PretrainConfig.clause_dropout,
                        help="probability of leaving out each item of a caption (default: %(default)s)")
    parser.add_argument("--frames-from-disk", action="store_true",
                        help="read every frame from disk each step instead of decoding them once into RAM")
    parser.add_argument("--probe-root", default=None,
                        help="a SynthVVI validation draw (not the test split): the language probe runs on it every "
                             "--probe-every steps and the weights of each probed step are kept (OUT.stepN.safetensors)")
    parser.add_argument("--probe-every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--fp32", action="store_true",
                        help="train in fp32 (default: bf16 autocast where it measures faster than fp32; "
                             "LSMRL_PRECISION=fp32 does the same)")


def run(args: argparse.Namespace) -> int:
    config = PretrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup_steps=args.warmup_steps,
                            visible_grayscale_prob=args.visible_grayscale_prob, caption_mode=args.caption_mode,
                            visible_full_caption_prob=args.visible_full_caption_prob,
                            clause_dropout=args.clause_dropout, frames_in_ram=not args.frames_from_disk,
                            image_size=tuple(args.image_size), mixed_precision=not args.fp32)
    log_path = Path(args.out).with_suffix(".log.jsonl")
    summary = pretrain_clip(args.data_root, args.out, config, args.clip_model, tuple(config.image_size),
                            args.seed, args.device, log_path=log_path, probe_root=args.probe_root,
                            probe_every=args.probe_every)
    print(json.dumps(summary["zero_shot"], indent=2))
    print(f"pretraining took {summary['wall_time_s']:.0f} s ({summary['seconds_per_step']:.2f} s a step, "
          f"{summary['precision']}); weights: {args.out}; log: {log_path}")
    return 0


def pretrain_clip(data_root: str, out: str | Path, config: PretrainConfig, clip_model: str = "lsmrl-mini",
                  image_size: tuple[int, int] | None = None, seed: int = 0, device: str | None = None,
                  log_path: str | Path | None = None, probe_root: str | Path | None = None,
                  probe_every: int = 0) -> dict:
    """Pretrain, save the weights at ``out`` with a JSON sidecar (vocabulary, recipe, timings, zero-shot probes)
    and return the sidecar. With ``probe_root`` (a SynthVVI validation draw: not the test split) the language
    probe runs on it every ``probe_every`` steps and at the end (``validation`` in the log and the sidecar), and
    the weights of each probed step are kept as ``OUT.stepN.safetensors``, so the length is chosen on it."""
    start = time.time()
    seed_everything(seed)
    device = get_device(device)
    image_size = tuple(image_size or config.image_size)
    precision = training_precision(device, config.mixed_precision)
    dataset = build_dataset("synthvvi", data_root)
    train = [t for t in dataset.train if t.caption]
    if not train:
        raise LSMRLError(f"{data_root}: no training tracklets with captions; generate SynthVVI with "
                         "--train-identities > 0")
    text_cfg = clip_model_config(clip_model)["text_cfg"]
    tokenizer = WordTokenizer.from_texts([t.caption for t in train] + probe_texts(),
                                         text_cfg["vocab_size"], text_cfg["context_length"])
    clip = build_clip(BackboneConfig(clip_model, image_size)).to(device).train()
    validation_set = build_dataset("synthvvi", str(probe_root)) if probe_root else None
    validation: list[dict] = []
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def sidecar() -> dict:
        return {"format": CLIP_FORMAT, "clip_model": clip_model, "image_size": list(image_size),
                "tokenizer": tokenizer.to_config(), "pretrain": asdict(config), "seed": seed,
                "data_root": str(data_root), "precision": precision.name,
                "precision_choice": precision_record(precision)}

    def probe(step: int, keep: bool = True) -> None:
        clip.eval()
        result = probe_language(clip_view(clip, tokenizer, image_size, device, precision.name), validation_set)
        clip.train()
        record = {"step": step, "probe_root": str(probe_root),
                  **{m: {k: result[m][k] for k in ("attribute_balanced_accuracy", "caption_top1")} for m in MODALITIES}}
        validation.append(record)
        if keep:  # the final step's weights are OUT itself
            snapshot = out.with_suffix(f".step{step}.safetensors")
            _save_weights(clip, snapshot)
            snapshot.with_suffix(".json").write_text(json.dumps({**sidecar(), "step": step, "validation": record}) + "\n")
        log.write({"validation": record})
        print(f"step {step}: language probe on {probe_root}: " + ", ".join(
            f"{m} attributes {record[m]['attribute_balanced_accuracy']}, caption top-1 {record[m]['caption_top1']}"
            for m in MODALITIES))

    shared = config.caption_mode == "shared"
    colour_free = colour_free_captions(train) if (config.visible_grayscale_prob or shared) else {}
    transform = build_transform(image_size, train=True, padding=4)
    bank = FrameBank(train, image_size) if config.frames_in_ram else None
    optimizer = adamw([{"params": list(clip.parameters())}], config.lr, config.weight_decay)
    schedule = warmup_cosine(optimizer, config.warmup_steps, config.steps)
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    log = StepLog(log_path)
    progress = tqdm(range(config.steps), desc="pretrain-clip", unit="step")
    for step in progress:
        picks = rng.choice(len(train), size=min(config.batch_size, len(train)), replace=False)
        grey, texts, keys = [], [], []
        for i in picks:
            tracklet, caption = train[i], train[i].caption
            in_grey = bool(tracklet.modality == VISIBLE and tracklet.pid in colour_free
                           and config.visible_grayscale_prob and rng.random() < config.visible_grayscale_prob)
            if in_grey:
                caption = colour_free[tracklet.pid]
            elif shared and tracklet.modality == VISIBLE and rng.random() >= config.visible_full_caption_prob:
                caption = colour_free[tracklet.pid]
            caption = drop_clauses(caption, config.clause_dropout, rng)
            grey.append(in_grey)
            texts.append(caption)
            keys.append(tracklet.pid if shared else caption)  # what counts as a positive pair
        if bank is not None:
            frames = bank.random_frames(picks, rng)
            if any(grey):
                rows = torch.tensor(grey)
                frames[rows] = grey_uint8(frames[rows])
            frames = augment_batch(frames, generator, padding=4).to(device)
        else:
            images = []
            for i, in_grey in zip(picks, grey):
                frame = load_tracklet(train[i], 1, "restricted_random", rng)[0]
                images.append(transform([to_grayscale(frame[None])[0] if in_grey else frame], generator=generator)[0])
            frames = torch.stack(images).to(device)
        unique_texts = {text: row for row, text in enumerate(dict.fromkeys(texts))}
        text_rows = torch.tensor([unique_texts[text] for text in texts], device=device)
        key_ids = {key: number for number, key in enumerate(dict.fromkeys(keys))}
        ids = torch.tensor([key_ids[key] for key in keys], device=device)  # equal ids = positive pairs
        tokens = tokenizer(list(unique_texts)).to(device)
        if step == 1:
            loop_start = time.time()  # seconds a step: from the second step on (the first one warms up)
        with precision.autocast():
            text_features = clip.encode_text(tokens)[text_rows]
            image_features = clip.encode_image(frames)
        # the loss (softmax over the batch) in fp32: bf16's 8-bit mantissa would blur near-equal logits
        loss = clip_contrastive_loss(image_features.float(), text_features.float(), ids,
                                     clip.logit_scale.exp().clamp(max=100))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            clip.logit_scale.clamp_(0, np.log(100))
        if validation_set is not None and probe_every and (step + 1) % probe_every == 0 and step + 1 < config.steps:
            probe(step + 1)
        if log.log_step(step, every=config.log_every, last=config.steps - 1, losses={"loss": loss},
                        lr=schedule.get_last_lr()[0], start=start):
            progress.set_postfix(loss=f"{loss.item():.3f}")
    if validation_set is not None:
        probe(config.steps, keep=False)
    log.close()
    seconds_per_step = (time.time() - loop_start) / max(1, config.steps - 1) if config.steps > 1 else time.time() - start
    clip.eval()
    zero_shot = zero_shot_attribute_accuracy(clip, tokenizer, dataset, image_size, device)
    wall = time.time() - start
    _save_weights(clip, out)
    summary = {**sidecar(), "wall_time_s": round(wall, 1), "seconds_per_step": round(seconds_per_step, 3),
               "zero_shot": zero_shot, "validation": validation,
               "log": [record for record in log.records if "loss" in record]}
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _save_weights(clip, path: Path) -> None:
    save_file({k: v.detach().cpu().contiguous() for k, v in clip.state_dict().items()}, str(path))


def grey_uint8(frames: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` uint8 in grey on 3 channels, the luma of :func:`lsmrl.engine.data.to_grayscale`."""
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    luma = (frames.float() * weights).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
    return luma.expand(-1, 3, -1, -1).contiguous()


def read_clip_sidecar(weights: str | Path) -> dict | None:
    """The JSON written next to pretrained miniature CLIP weights (tokenizer, sizes), if any."""
    sidecar = Path(weights).with_suffix(".json")
    if not sidecar.is_file():
        return None
    meta = json.loads(sidecar.read_text())
    return meta if meta.get("format") == CLIP_FORMAT else None
