"""Feature extraction of every named stage, and the ``eval`` / ``extract`` commands.

``extract_stages`` runs the model in eval mode over tracklets with the test
protocol's frame sampling and returns, per tracklet, every stage the model
names (``stfl``, ``sd``, ``cmi``, ``embedding``, per-frame features and the SD
and CMI attention weights), so analysis never re-implements the model.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from lsmrl.data.registry import build_dataset
from lsmrl.data.tracklet import VVIDataset
from lsmrl.device import PRECISIONS, autocast_context, get_device, inference_precision
from lsmrl.engine.data import eval_loader
from lsmrl.errors import LSMRLError
from lsmrl.evaluation.protocols import (
    direction_distmats,
    evaluate_directions,
    format_metrics_table,
    query_records,
    within_modality_metrics,
)
from lsmrl.model.checkpoint import load_model, read_checkpoint_meta, sidecar_path, write_checkpoint_meta
from lsmrl.model.lsmrl import LSMRL
from lsmrl.model.stages import STAGES
from lsmrl.model.stfl import bf16_weights

#: The parts after the visual tower: under bf16 autocast they stay fp32. They cost next to nothing (a few
#: MFLOPs a tracklet against the ViT's GFLOPs) and they shape the final embedding; CMI also writes its
#: attention into an fp32 buffer, which a bf16 result cannot be put into.
FP32_HEAD = ("semantic_diffusion", "cross_modal", "neck")


@contextlib.contextmanager
def inference_autocast(model: torch.nn.Module, device=None, precision: str = "auto"):
    """The context every LSMRL inference forward runs in: bf16 where :func:`lsmrl.device.inference_precision`
    picks it, else fp32.

    In bf16, gradient-free forwards run the visual tower as a bf16 copy of its weights, made once
    (:func:`lsmrl.model.stfl.bf16_weights`): no per-call weight casts, no fp32/bf16 casts between layers.
    Autocast stays on around it for what else runs in the forward, and the head (:data:`FP32_HEAD`) in fp32.
    """
    device = device or next(model.parameters()).device
    head = [module for module in (getattr(model, name, None) for name in FP32_HEAD) if module is not None]
    with contextlib.ExitStack() as stack:
        stack.enter_context(autocast_context(device, precision, fp32_modules=head))
        if inference_precision(precision, device) == "bf16":
            stack.enter_context(bf16_weights())
        yield


@torch.inference_mode()  # no autograd bookkeeping at all (faster than no_grad); outputs leave as numpy
def extract_stages(model: LSMRL, tracklets, num_frames: int, sampling: str, batch_size: int = 16,
                   device=None, progress: bool = True, callback=None,
                   precision: str = "auto") -> dict[str, np.ndarray]:
    """Stage features of ``tracklets``: dict of arrays (N, D) per stage, plus ``frames`` (N, T, D),
    ``sd_attention`` / ``cmi_attention`` (N, C) when the model has them, ``pids``, ``camids``, ``modalities``.

    ``callback(done, total)`` reports progress (the app's progress bar). ``precision``: "auto" (the
    process's ``LSMRL_PRECISION``, else bf16 autocast where bf16 is native and measures faster, else fp32), "bf16"
    or "fp32" (:func:`lsmrl.device.inference_precision`); the features come back as fp32 arrays either way.
    """
    device = device or next(model.parameters()).device
    model.eval()
    loader = eval_loader(tracklets, num_frames, model.config.image_size, sampling, batch_size)
    collected: dict[str, list] = {}
    done = 0
    for batch in tqdm(loader, desc="extracting features", unit="batch", disable=not progress):
        with inference_autocast(model, device, precision):
            out = model(batch["frames"].to(device), batch["modalities"].to(device))
        for key in STAGES + ("frames", "sd_attention", "cmi_attention"):
            if out.get(key) is not None:
                collected.setdefault(key, []).append(out[key].float().cpu().numpy())
        done += len(batch["indices"])
        if callback:
            callback(done, len(tracklets))
    result = {key: np.concatenate(values) for key, values in collected.items()}
    result["pids"] = np.array([t.pid for t in tracklets], dtype=np.int64)
    result["camids"] = np.array([t.camid for t in tracklets], dtype=np.int64)
    result["modalities"] = np.array([t.modality == "infrared" for t in tracklets], dtype=np.int64)
    return result


def data_fingerprint(dataset: VVIDataset) -> str:
    """A short hash of the test and train tracklet lists (paths, identities, cameras, modalities)."""
    digest = hashlib.sha256()
    for split in (dataset.train, dataset.test):
        for t in split:
            digest.update(f"{t.pid}|{t.camid}|{t.modality}|{t.video or ''}|{len(t.frames)}|".encode())
            if t.frames:
                digest.update(Path(t.frames[0]).name.encode())
    return digest.hexdigest()[:16]


def evaluate_model(model: LSMRL, dataset: VVIDataset, num_frames: int | None = None, batch_size: int = 16,
                   stage: str = "embedding", progress: bool = True,
                   precision: str = "auto") -> tuple[dict, dict, dict]:
    """(metrics of both directions in percent, the stage features, per-query records)."""
    frames = num_frames or dataset.test_num_frames
    features = extract_stages(model, dataset.test, frames, dataset.test_sampling, batch_size, progress=progress,
                              precision=precision)
    distmats = direction_distmats(features[stage], dataset, metric=dataset.metric)
    metrics = evaluate_directions(dataset=dataset, distmat=distmats)
    records = records_to_json(query_records(dataset=dataset, distmat=distmats), dataset)
    return metrics, features, records


def records_to_json(records: dict, dataset: VVIDataset) -> dict:
    """Per-query records as JSON-ready dicts (NaN -> None, tracklet ids next to test indices)."""
    out = {}
    for direction, items in records.items():
        rows = []
        for record in items:
            row = asdict(record)
            for key in ("ap", "inp"):
                row[key] = None if math.isnan(row[key]) else round(row[key], 6)
            row["query"] = dataset.test[record.query_index].tid
            row["topk_distances"] = [round(d, 6) for d in record.topk_distances]
            row["topk_tracklets"] = [dataset.test[i].tid for i in record.topk_indices]
            rows.append(row)
        out[direction] = rows
    return out


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="an LSMRL .safetensors checkpoint (JSON sidecar next to it)")
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--dataset", default="synthvvi", choices=["synthvvi", "hitsz-vcm", "buptcampus"])
    parser.add_argument("--frames", type=int, default=None, help="test frames per tracklet (default: the protocol's)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default=None)
    parser.add_argument("--precision", default="auto", choices=list(PRECISIONS),
                        help="inference precision: auto (bf16 autocast where the hardware computes bf16 natively and "
                             "it measures faster, else fp32; LSMRL_PRECISION=fp32|bf16 sets what auto means), bf16 or fp32")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``eval``: both directions, metrics JSON + per-query JSON."""
    _add_common(parser)
    parser.add_argument("--json", required=True, help="metrics output (percent, both directions)")
    parser.add_argument("--per-query", default=None, help="per-query output (default: <json>.queries.json)")
    parser.add_argument("--stage", default="embedding", choices=list(STAGES),
                        help="which stage's features to rank with (default: the final embedding)")
    parser.add_argument("--record", action="store_true",
                        help="also store the metrics in the checkpoint's JSON sidecar (``metrics``, with the data "
                             "fingerprint), e.g. for a run trained with --no-eval; the weights are not touched")


def run(args: argparse.Namespace) -> int:
    if args.record and (args.stage != "embedding" or args.frames is not None):
        raise LSMRLError("--record stores the protocol's figures: use it without --stage and --frames")
    model, meta = load_model(args.checkpoint, get_device(args.device))
    dataset = build_dataset(args.dataset, args.data_root)
    precision = inference_precision(args.precision, next(model.parameters()).device)
    print(f"inference precision: {precision}")
    metrics, features, records = evaluate_model(model, dataset, args.frames, args.batch_size, args.stage,
                                                precision=precision)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(metrics, indent=2) + "\n")
    per_query = Path(args.per_query) if args.per_query else out.with_suffix(".queries.json")
    per_query.write_text(json.dumps(records) + "\n")
    within = within_modality_metrics(features[args.stage], dataset, metric=dataset.metric)
    within_path = out.with_suffix(".within_modality.json")
    within_path.write_text(json.dumps(within, indent=2) + "\n")
    print(format_metrics_table(metrics))
    print("diagnostic, within one modality (other cameras only):")
    print(format_metrics_table(within))
    print(f"metrics: {out}\nper-query records: {per_query}\nwithin-modality diagnostic: {within_path}")
    if args.record:
        record_metrics(args.checkpoint, metrics, dataset)
        print(f"recorded in {sidecar_path(args.checkpoint)}")
    return 0


def record_metrics(checkpoint: str | Path, metrics: dict, dataset: VVIDataset) -> None:
    """Write ``metrics`` into the sidecar of ``checkpoint``; refuses if the sidecar holds figures of other data."""
    meta = read_checkpoint_meta(checkpoint)
    fingerprint = data_fingerprint(dataset)
    data = meta.get("data") or {}
    recorded = data.get("metrics_fingerprint") or data.get("fingerprint")
    if meta.get("metrics") and recorded not in (None, fingerprint):
        raise LSMRLError(f"{checkpoint}: its sidecar holds metrics of other data (fingerprint {recorded}, "
                         f"this data set {fingerprint}); not overwritten")
    meta["metrics"] = metrics
    meta.setdefault("data", {})["metrics_fingerprint"] = fingerprint
    write_checkpoint_meta(checkpoint, meta)


def add_extract_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser)
    parser.add_argument("--out", required=True, help="output .npz with one array per stage")
    parser.add_argument("--split", default="test", choices=["test", "train"])


def run_extract(args: argparse.Namespace) -> int:
    model, _ = load_model(args.checkpoint, get_device(args.device))
    dataset = build_dataset(args.dataset, args.data_root)
    tracklets = dataset.test if args.split == "test" else dataset.train
    frames = args.frames or dataset.test_num_frames
    precision = inference_precision(args.precision, next(model.parameters()).device)
    print(f"inference precision: {precision}")
    features = extract_stages(model, tracklets, frames, dataset.test_sampling, args.batch_size,
                              precision=precision)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **features)
    print(f"wrote {len(tracklets)} tracklets x stages {sorted(features)} to {out}")
    return 0
