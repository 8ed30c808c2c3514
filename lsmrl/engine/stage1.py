"""Stage 1: learn the modality-shared identity prompts on cached, frozen image features.

CLIP-ReID's first stage (Li et al., AAAI 2023), as LSMRL uses it for its
prompts (Sec. 3.3): the image encoder and the text encoder are frozen; every
training tracklet's sequence feature (STFL output) is computed once per
augmented pass and cached; then only the identity context tokens are trained
with the image-to-text and text-to-image supervised contrastive losses. The
cache is what makes this stage cheap on a CPU.

The image-to-text loss takes as negatives the prompts of the batch's identities (CLIP-ReID) or, with
``negatives="all"``, every identity's prompt (a cross-entropy over the whole bank; the text encoder is small,
so encoding all prompts a step is cheap). The prompts are the frozen targets of stage 2's i2t and SD losses:
until they retrieve their own identity's features, those losses pull towards noise.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from lsmrl.config import Stage1Config
from lsmrl.engine.data import SeededBatches, TrackletClips, collate
from lsmrl.engine.optim import adamw, warmup_cosine
from lsmrl.engine.precision import Precision
from lsmrl.engine.step_log import StepLog
from lsmrl.losses.contrastive import image_to_text_contrastive, text_to_image_contrastive
from lsmrl.model.lsmrl import LSMRL


@torch.no_grad()
def cache_image_features(model: LSMRL, clips: TrackletClips, passes: int, seed: int, device,
                         batch_size: int = 16, precision: Precision | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(features (N*passes, D), labels, modalities) from the frozen encoder over augmented passes
    (under ``precision``'s autocast when given; the cache is fp32)."""
    autocast = precision.autocast if precision is not None else contextlib.nullcontext
    model.eval()
    features, labels, modalities = [], [], []
    order = list(range(len(clips)))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    for number in range(passes):
        seeded = SeededBatches(batches, seed)
        seeded.set_epoch(number)
        for batch in tqdm(seeded, desc=f"stage 1: caching features (pass {number + 1}/{passes})", unit="batch"):
            data = collate([clips[item] for item in batch])
            with autocast():
                features.append(model.stfl(data["frames"].to(device))["sequence"].float().cpu())
            labels.append(data["labels"])
            modalities.append(data["modalities"])
    return torch.cat(features), torch.cat(labels), torch.cat(modalities)


def train_prompts(model: LSMRL, features: torch.Tensor, labels: torch.Tensor, config: Stage1Config,
                  seed: int, device, log: StepLog | None = None) -> list[dict]:
    """Optimise ``model.prompt_learner.identity_context`` only; returns the step records (also written to ``log``)."""
    start = time.time()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    context = model.prompt_learner.identity_context
    context.requires_grad_(True)
    optimizer = adamw([{"params": [context]}], config.lr, config.weight_decay)
    schedule = warmup_cosine(optimizer, config.warmup_steps, config.steps)
    temperature = 1.0 / model.clip.logit_scale.exp().item()
    rng = np.random.default_rng(seed)
    features, labels = features.to(device), labels.to(device)
    log = log if log is not None else StepLog()
    records = []
    model.eval()
    progress = tqdm(range(config.steps), desc="stage 1: prompts", unit="step")
    for step in progress:
        picks = torch.from_numpy(rng.choice(len(features), size=min(config.batch_size, len(features)),
                                            replace=False)).to(device)
        image, target = features[picks], labels[picks]
        if config.negatives == "all":  # every identity's prompt is a candidate, as in prompt_top1_train
            bank = model.prompt_features()
            text = bank[target]
            logits = F.normalize(image, dim=-1) @ F.normalize(bank, dim=-1).t() / temperature
            loss_i2t = F.cross_entropy(logits, target)
        else:
            text = model.prompt_features(target)
            loss_i2t = image_to_text_contrastive(image, text, target, temperature=temperature, normalize=True)
        loss_t2i = text_to_image_contrastive(text, image, target, temperature=temperature, normalize=True)
        loss = loss_i2t + loss_t2i
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        record = log.log_step(step, every=config.log_every, last=config.steps - 1,
                              losses={"loss": loss, "i2t": loss_i2t, "t2i": loss_t2i}, lr=schedule.get_last_lr()[0],
                              start=start, stage=1)
        if record:
            records.append(record)
            progress.set_postfix(loss=f"{loss.item():.3f}")
    context.requires_grad_(False)
    model.refresh_prompt_bank()
    return records


@torch.no_grad()
def prompt_retrieval_accuracy(model: LSMRL, features: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of cached training features whose most similar identity prompt is their own (a sanity figure)."""
    text = F.normalize(model.prompt_features(), dim=-1).cpu()
    image = F.normalize(features, dim=-1)
    return float(((image @ text.t()).argmax(dim=1) == labels).float().mean())
