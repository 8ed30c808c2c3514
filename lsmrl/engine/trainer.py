"""``python -m lsmrl train``: two-stage LSMRL training (stage 1 prompts, stage 2 everything else).

* **Stage 1** (:mod:`lsmrl.engine.stage1`) learns the identity prompts on
  cached features and writes ``stage1.safetensors``.
* **Stage 2** (:mod:`lsmrl.engine.stage2`) starts from the CLIP weights and
  receives the stage-1 prompts *explicitly*, read back from that file
  (:func:`hand_over_prompts`), not through a reused Python object
  (CLIP-ReID #66), then trains with every enabled loss.

Models that use no prompts (neither SD nor the i2t loss) skip stage 1 (the
baseline). At the end of stage 2 :func:`lsmrl.engine.calibrate.calibrate_modules`
rebuilds the CMI memory, the SD/CMI residual centres and the BNNeck statistics
from a clean eval-mode pass over the training set. One T
(``model.num_frames``) serves training and test. Under DDP the model runs with
``broadcast_buffers=False`` (rank 0's buffers would overwrite the other ranks'
CMI memory updates at every forward); the memory and centre updates are
gathered over the ranks instead (:mod:`lsmrl.model.centring`).
Runs are seeded; ``--resume`` continues from ``last.safetensors`` +
``last_state.pt`` (optimizer and schedule, read with ``weights_only=True``).
A JSON-lines log (``log.jsonl``) gets a record every ``log_every`` steps and
at every epoch end. Multi-GPU runs go through ``torchrun`` (DDP). Mixed precision
(``amp``): bf16 autocast where it measures faster than fp32, bf16/fp16 on CUDA (:mod:`lsmrl.engine.precision`).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import torch
from tqdm import tqdm

from lsmrl.config import TrainConfig, dump_config, load_config
from lsmrl.data.registry import build_dataset
from lsmrl.device import get_device, seed_everything
from lsmrl.engine.calibrate import calibrate_modules
from lsmrl.engine.data import TrackletClips, label_map, train_loader
from lsmrl.engine.extract import data_fingerprint, evaluate_model
from lsmrl.engine.frame_bank import FrameBank
from lsmrl.engine.module_effects import modality_constant_share
from lsmrl.engine.precision import precision_record, training_precision
from lsmrl.engine.pretrain_clip import read_clip_sidecar
from lsmrl.engine.stage1 import cache_image_features, prompt_retrieval_accuracy, train_prompts
from lsmrl.engine.stage2 import Stage2Losses, build_optimizer, set_trainable
from lsmrl.engine.step_log import StepLog
from lsmrl.errors import CheckpointError, LSMRLError
from lsmrl.evaluation.protocols import format_metrics_table
from lsmrl.model.checkpoint import file_sha256, load_model, save_checkpoint
from lsmrl.model.lsmrl import LSMRL
from lsmrl.model.semantic_diffusion import GeneratedPromptDiffusion
from lsmrl.model.tokenizer import WordTokenizer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="mini_synthvvi.yaml",
                        help="YAML config (a path, or a bundled name such as mini_synthvvi.yaml)")
    parser.add_argument("--data-root", default=None, help="overrides data.root")
    parser.add_argument("--clip-weights", default=None, help="local CLIP weights (.safetensors or state dict)")
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--resume", action="store_true", help="continue from <out>/last.safetensors")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--no-eval", action="store_true", help="skip the final evaluation on the test split")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. model.sd=false stage2.steps=100")


def run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.data_root:
        overrides.append(f"data.root={args.data_root}")
    config = load_config(args.config, overrides)
    summary = train(config, args.out, args.clip_weights, args.resume, args.device, evaluate=not args.no_eval)
    if summary.get("metrics"):
        print(format_metrics_table(summary["metrics"]))
    print(f"checkpoint: {summary['checkpoint']}")
    return 0


def _distributed() -> tuple[int, int]:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    rank = torch.distributed.get_rank() if world_size > 1 else 0
    return rank, world_size


def build_model(config: TrainConfig, num_classes: int, clip_weights: str | None, train_captions: list[str]) -> LSMRL:
    """The model of ``config`` with ``num_classes`` identities, on the given CLIP weights."""
    model_config = replace(config.model, num_classes=num_classes)
    if clip_weights:
        sidecar = read_clip_sidecar(clip_weights)
        if sidecar is not None:
            if sidecar["clip_model"] != model_config.clip_model:
                raise CheckpointError(f"{clip_weights} is a {sidecar['clip_model']} CLIP, the config asks for "
                                      f"{model_config.clip_model}")
            model_config = replace(model_config, tokenizer=sidecar["tokenizer"])
    if model_config.clip_model == "lsmrl-mini" and model_config.tokenizer is None:
        # random-init miniature CLIP (smoke tests): a vocabulary from the training captions
        model_config = replace(model_config, tokenizer=WordTokenizer.from_texts(train_captions, 512, 32).to_config())
    return LSMRL(model_config, clip_weights=clip_weights)


def identity_provenance(dataset, labels: dict[int, int]) -> dict:
    """What the identity prompts and classifier rows stand for: the training identity of each label
    (and, on SynthVVI, its attributes), so analysis can name the prompts without the training data."""
    pids = sorted(labels, key=labels.get)
    out = {"train_identities": len(pids), "train_pids": pids}
    if dataset.attributes:
        out["train_attributes"] = {str(pid): dataset.attributes[pid] for pid in pids if pid in dataset.attributes}
    return out


def hand_over_prompts(model: LSMRL, stage1_checkpoint: Path) -> None:
    """Stage 1 -> stage 2: copy the learnt identity contexts from the stage-1 checkpoint and refresh SD's bank."""
    stage1, _ = load_model(stage1_checkpoint)
    if stage1.prompt_learner.identity_context.shape != model.prompt_learner.identity_context.shape:
        raise CheckpointError(f"{stage1_checkpoint}: its prompts do not fit this model (other identities?)")
    with torch.no_grad():
        model.prompt_learner.identity_context.copy_(stage1.prompt_learner.identity_context)
    model.refresh_prompt_bank()
    if isinstance(model.semantic_diffusion, GeneratedPromptDiffusion):
        # generated prompts start as the mean learnt identity prompt; stage 2 makes them input-specific
        model.semantic_diffusion.inversion.start_from(model.prompt_learner.identity_context)


def wrap_distributed(model: LSMRL, device: torch.device) -> torch.nn.Module:
    """DDP without buffer broadcast: the CMI memory and the residual centres are synced by their own
    all-gathers (:mod:`lsmrl.model.centring`); a broadcast would overwrite the other ranks' updates."""
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True,
                                                     broadcast_buffers=False)


def train(config: TrainConfig, out_dir: str | Path, clip_weights: str | None = None, resume: bool = False,
          device: str | None = None, evaluate: bool = True) -> dict:
    rank, world_size = _distributed()
    device = get_device(device)
    seed_everything(config.seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not config.data.root:
        raise LSMRLError("no data root: pass --data-root DIR (or set data.root in the config)")
    dataset = build_dataset(config.data.dataset, config.data.root)
    labels = label_map(dataset.train)
    model = build_model(config, len(labels), clip_weights, [t.caption for t in dataset.train if t.caption])
    model.to(device)
    if rank == 0:
        dump_config(config, out_dir / "config.yaml")
    log = StepLog(out_dir / "log.jsonl" if rank == 0 else None, append=resume)
    timings: dict[str, float] = {}
    image_size = tuple(model.config.image_size)
    num_frames = model.config.num_frames
    if num_frames != dataset.test_num_frames and rank == 0:
        print(f"note: model.num_frames = {num_frames} differs from the test protocol's {dataset.test_num_frames} "
              "frames; the test is evaluated with the protocol's")
    precision = training_precision(device, config.amp)
    timings["precision"] = precision.name
    timings["precision_choice"] = precision_record(precision)
    if rank == 0:
        print(f"training precision: {precision.name} ({timings['precision_choice']})")

    # frames decoded once for stage 1's cache and stage 2 (frame folders only: video files are read per step)
    bank = None
    if config.data.frames_in_ram and all(t.frames for t in dataset.train):
        start = time.time()
        bank = FrameBank(dataset.train, image_size, progress=rank == 0)
        timings["frames_in_ram_s"] = round(time.time() - start, 1)
        timings["frames_in_ram_mb"] = round(bank.nbytes / 2**20, 1)

    # ---------------------------------------------------------------- stage 1
    stage1_path = out_dir / "stage1.safetensors"
    stage1_metrics = {}
    if model.config.needs_prompts:
        if resume and stage1_path.is_file():
            print(f"stage 1: reusing {stage1_path}")
        else:
            start = time.time()
            clips = TrackletClips(dataset.train, num_frames, image_size, train=True, labels=labels,
                                  flip_prob=config.data.flip_prob, padding=config.data.padding, bank=bank)
            features, feature_labels, _ = cache_image_features(model, clips, config.stage1.feature_passes,
                                                               config.seed, device, precision=precision)
            train_prompts(model, features, feature_labels, config.stage1, config.seed, device, log)
            stage1_metrics = {"prompt_top1_train": round(prompt_retrieval_accuracy(model, features, feature_labels), 4)}
            timings["stage1_s"] = round(time.time() - start, 1)
            if rank == 0:
                save_checkpoint(model, stage1_path, training={"stage": 1, **timings}, metrics=stage1_metrics)
        # the explicit hand-off: stage 2 reads the prompts back from the stage-1 file
        model = build_model(config, len(labels), clip_weights, [t.caption for t in dataset.train if t.caption])
        model.to(device)
        hand_over_prompts(model, stage1_path)

    # ---------------------------------------------------------------- stage 2
    start = time.time()
    stage = config.stage2
    set_trainable(model, stage)
    optimizer, schedule = build_optimizer(model, stage)
    losses = Stage2Losses(model, config)
    step = 0
    if resume and (out_dir / "last.safetensors").is_file():
        resumed, _ = load_model(out_dir / "last.safetensors", device)
        model.load_state_dict(resumed.state_dict())
        state = torch.load(out_dir / "last_state.pt", map_location=device, weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        step = int(state["step"])
        print(f"stage 2: resumed at step {step}")
    first_step = step
    loader = train_loader(dataset.train, labels, image_size, config.data, config.seed, rank, world_size,
                          num_frames=num_frames, bank=bank)
    network = wrap_distributed(model, device) if world_size > 1 else model
    scaler = torch.amp.GradScaler(device.type, enabled=precision.needs_grad_scaler)
    model.train()
    epoch = step // max(1, len(loader))
    progress = tqdm(total=stage.steps, initial=step, desc="stage 2", unit="step", disable=rank != 0)
    epoch_terms: dict[str, float] = {}
    epoch_batches = 0
    validation_set = build_dataset(config.data.dataset, config.data.val_root) if config.data.val_root else None
    validation: list[dict] = []

    def validate() -> None:
        metrics, _, _ = evaluate_model(model, validation_set, progress=False)
        model.train()
        record = {"stage": 2, "step": step, "validation": {d: {k: round(m[k], 2) for k in ("rank1", "mAP")}
                                                           for d, m in metrics.items()},
                  "val_root": str(config.data.val_root)}
        validation.append(record)
        log.write(record)

    while step < stage.steps:
        loader.batch_sampler.set_epoch(epoch)
        for batch in loader:
            if step >= stage.steps:
                break
            frames = batch["frames"].to(device, non_blocking=True)
            target, modalities = batch["labels"].to(device), batch["modalities"].to(device)
            with precision.autocast():
                out = network(frames, modalities, labels=target)
            terms = losses(out, target, modalities)  # in fp32: the losses take .float() of the features
            loss = config.losses.total(terms)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            schedule.step()
            step += 1
            epoch_batches += 1
            for name, value in terms.items():
                epoch_terms[name] = epoch_terms.get(name, 0.0) + value.item()
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.3f}")
            log.log_step(step, every=stage.log_every, last=stage.steps, losses={"loss": loss, **terms},
                         lr=schedule.get_last_lr()[0], start=start, stage=2, epoch=epoch)
            if rank == 0 and validation_set is not None and stage.validate_every and step % stage.validate_every == 0:
                validate()
            if rank == 0 and stage.checkpoint_every and step % stage.checkpoint_every == 0:
                save_checkpoint(model, out_dir / "last.safetensors", training={"stage": 2, "step": step})
                torch.save({"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(), "step": step},
                           out_dir / "last_state.pt")
        if rank == 0 and epoch_batches:
            log.write({"stage": 2, "epoch_end": epoch, "step": step,
                       **{f"mean_{k}": round(v / epoch_batches, 4) for k, v in epoch_terms.items()}})
        epoch_terms, epoch_batches = {}, 0
        epoch += 1
    progress.close()
    timings["stage2_s"] = round(time.time() - start, 1)
    timings["stage2_s_per_step"] = round(timings["stage2_s"] / max(1, stage.steps - first_step), 3)

    # ---------------------------------------------------------------- calibration (clean pass, every rank alike)
    start = time.time()
    calibration = calibrate_modules(model, dataset.train, labels, device=device, mixed_precision=config.amp,
                                    progress=rank == 0)
    timings["calibrate_s"] = round(time.time() - start, 1)

    # ---------------------------------------------------------------- evaluation + checkpoint
    model.eval()
    summary = {"checkpoint": str(out_dir / "model.safetensors"), "timings": timings}
    if rank == 0:
        metrics = effects = None
        if evaluate:
            start = time.time()
            metrics, features, records = evaluate_model(model, dataset)
            effects = modality_constant_share(features)
            timings["eval_s"] = round(time.time() - start, 1)
            (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
            (out_dir / "metrics.queries.json").write_text(json.dumps(records) + "\n")
            log.write({"eval": metrics})
        training = {"config": config.to_dict(), "timings": timings, "clip_weights": str(clip_weights) if clip_weights else None,
                    "clip_weights_sha256": file_sha256(clip_weights) if clip_weights else None,
                    "stage1": stage1_metrics, "world_size": world_size, "device": str(device),
                    "validation": validation,
                    "calibration": calibration, "module_effects": effects}
        data = {"dataset": config.data.dataset, "root": str(config.data.root), "fingerprint": data_fingerprint(dataset),
                "synthvvi_version": getattr(dataset, "synthvvi_version", None),
                "test_tracklets": len(dataset.test), **identity_provenance(dataset, labels)}
        save_checkpoint(model, out_dir / "model.safetensors", training=training, data=data, metrics=metrics)
        summary["metrics"] = metrics
        log.close()
    if world_size > 1:
        torch.distributed.barrier()
    return summary
