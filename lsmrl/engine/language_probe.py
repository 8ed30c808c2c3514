"""``python -m lsmrl language-probe``: does the model's language describe people it never saw, in both modalities?

LSMRL is language-driven: SD diffuses modality-shared prompts into visible and infrared features, and the
i2t loss pulls the sequence feature towards the identity's prompt. That only helps where the text space
describes a person the same way whatever the modality. This probe measures it on test identities (nobody
trained on them), per modality:

- ``attribute_balanced_accuracy``: zero-shot attribute probes ("a person with a backpack" vs "... without
  a backpack"), balanced accuracy averaged over the attributes that near-infrared pixels show
  (:data:`SHARED_PROBES`: accessories, pattern, sleeves, hair length, lower garment, shoes, build). Colour
  is left out (absent in infrared); "tall" (not observable in a person crop, whose height is normalised)
  and "thick top" (a thermal property, invisible in near-infrared) are reported apart. Chance is 50.
- ``caption_top1``: a tracklet retrieves its identity's colour-free caption (the infrared caption) among the
  colour-free captions of every identity in the split; identical captions of two identities count as
  correct. Chance is 100 / the number of distinct captions.

Both in percent. ``--checkpoint`` is a pretrained miniature CLIP (``pretrain-clip``'s weights with their JSON
sidecar: the mean of the frames' image features) or an LSMRL checkpoint (the STFL sequence feature, which
the i2t loss trains, against the model's own text encoder).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lsmrl.data.registry import build_dataset
from lsmrl.data.tracklet import INFRARED, VISIBLE, VVIDataset
from lsmrl.device import PRECISIONS, get_device, inference_precision
from lsmrl.engine.data import eval_loader
from lsmrl.engine.extract import inference_autocast
from lsmrl.engine.pretrain_clip import read_clip_sidecar
from lsmrl.engine.zero_shot import attribute_accuracy
from lsmrl.errors import LSMRLError
from lsmrl.model.backbone import BackboneConfig, build_clip, build_tokenizer
from lsmrl.model.checkpoint import load_model

#: The attribute probes whose attribute near-infrared pixels show (both modalities can be asked about them).
SHARED_PROBES = ("backpack", "bag", "hat", "striped top", "checked top", "logo top", "long sleeves", "long hair",
                 "skirt", "shorts", "boots", "broad")
#: Probes reported apart: "tall" is not observable in a height-normalised crop, "thick top" is thermal only.
APART_PROBES = ("tall", "thick top")
MODALITIES = (VISIBLE, INFRARED)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True,
                        help="pretrained CLIP weights (pretrain-clip, with their .json) or an LSMRL checkpoint")
    parser.add_argument("--data-root", required=True, help="a SynthVVI root (its test split is probed)")
    parser.add_argument("--json", required=True, help="output JSON")
    parser.add_argument("--frames", type=int, default=None, help="frames per tracklet (default: the protocol's)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default=None)
    parser.add_argument("--precision", default="auto", choices=list(PRECISIONS))


def run(args: argparse.Namespace) -> int:
    dataset = build_dataset("synthvvi", args.data_root)
    result = language_probe(args.checkpoint, dataset, args.frames, args.batch_size, args.device, args.precision)
    result["data_root"] = str(args.data_root)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    for modality in MODALITIES:
        figures = result[modality]
        print(f"{modality:9s} attribute balanced accuracy {figures['attribute_balanced_accuracy']:.1f} "
              f"(chance 50) | caption top-1 {figures['caption_top1']:.1f} (chance {result['chance']['caption_top1']:.1f})")
    print(f"written: {out}")
    return 0


class LanguageView:
    """A model seen as (image features per tracklet, text features), both L2-normalised."""

    def __init__(self, encode_clips: Callable[[torch.Tensor], torch.Tensor],
                 encode_text: Callable[[list[str]], torch.Tensor], image_size: tuple[int, int], num_frames: int,
                 kind: str):
        self.encode_clips, self.encode_text = encode_clips, encode_text
        self.image_size, self.num_frames, self.kind = image_size, num_frames, kind


def load_language_view(checkpoint: str | Path, device, precision: str = "auto") -> LanguageView:
    """Read a pretrained CLIP file or an LSMRL checkpoint as a :class:`LanguageView`."""
    device = get_device(device) if not isinstance(device, torch.device) else device
    clip_meta = read_clip_sidecar(checkpoint)
    if clip_meta is not None:
        image_size = tuple(clip_meta["image_size"])
        clip = build_clip(BackboneConfig(clip_meta["clip_model"], image_size), checkpoint).to(device).eval()
        tokenizer = build_tokenizer(clip_meta["clip_model"], clip_meta["tokenizer"])

        def encode_clips(frames: torch.Tensor) -> torch.Tensor:
            with inference_autocast(clip, device, precision):
                per_frame = F.normalize(clip.encode_image(frames.flatten(0, 1)).float(), dim=-1)
            return F.normalize(per_frame.reshape(*frames.shape[:2], -1).mean(1), dim=-1)

        def encode_text(texts: list[str]) -> torch.Tensor:
            return F.normalize(clip.encode_text(tokenizer(texts).to(device)).float(), dim=-1).cpu()

        return LanguageView(encode_clips, encode_text, image_size, 4, "clip")
    try:
        model, _ = load_model(checkpoint, device)
    except Exception as error:  # neither kind: say what was expected
        raise LSMRLError(f"{checkpoint}: neither pretrained CLIP weights with a pretrain-clip sidecar nor an LSMRL "
                         f"checkpoint ({error})") from error
    model.eval()

    def encode_model_clips(frames: torch.Tensor) -> torch.Tensor:
        with inference_autocast(model, device, precision):
            return F.normalize(model.stfl(frames)["sequence"].float(), dim=-1)

    def encode_model_text(texts: list[str]) -> torch.Tensor:
        return model.encode_text(texts).float().cpu()

    return LanguageView(encode_model_clips, encode_model_text, tuple(model.config.image_size),
                        model.config.num_frames, "lsmrl")


@torch.no_grad()
def language_probe(checkpoint: str | Path, dataset: VVIDataset, num_frames: int | None = None, batch_size: int = 16,
                   device=None, precision: str = "auto") -> dict:
    device = get_device(device)
    chosen = inference_precision(precision, device)
    view = load_language_view(checkpoint, device, chosen)
    if not dataset.attributes:
        raise LSMRLError(f"{dataset.root}: no identity attributes (info/synthvvi.json): the probe needs SynthVVI")
    frames = num_frames or view.num_frames
    images = []
    for batch in eval_loader(dataset.test, frames, view.image_size, dataset.test_sampling, batch_size):
        images.append(view.encode_clips(batch["frames"].to(device)).cpu())
    images = torch.cat(images)
    attributes = attribute_accuracy(images, view.encode_text, dataset, SHARED_PROBES + APART_PROBES)
    captions = caption_retrieval(images, view.encode_text, dataset)
    result = {"checkpoint": str(checkpoint), "kind": view.kind, "precision": chosen, "frames": frames,
              "shared_probes": list(SHARED_PROBES),
              "chance": {"attribute_balanced_accuracy": 50.0, "caption_top1": captions["chance"]},
              "per_probe": attributes["per_probe"]}
    for modality in MODALITIES:
        shared = [attributes["per_probe"][name][modality]["balanced_accuracy"] for name in SHARED_PROBES
                  if modality in attributes["per_probe"].get(name, {})]
        result[modality] = {
            "attribute_balanced_accuracy": round(100.0 * float(np.mean(shared)), 2) if shared else None,
            "caption_top1": captions[modality]["top1"], "tracklets": captions[modality]["tracklets"],
            "probes": len(shared),
        }
    result["apart"] = {name: {m: round(100.0 * v["balanced_accuracy"], 2) for m, v in
                              attributes["per_probe"].get(name, {}).items()} for name in APART_PROBES}
    return result


def colour_free_captions(dataset: VVIDataset) -> dict[int, str]:
    """Identity -> its colour-free caption (the caption of its infrared tracklets) over the test split."""
    return {t.pid: t.caption for t in dataset.test if t.modality == INFRARED and t.caption}


def caption_retrieval(images: torch.Tensor, encode_text, dataset: VVIDataset) -> dict:
    """Top-1 (percent) of each tracklet's own colour-free caption among the split's distinct colour-free captions."""
    own = colour_free_captions(dataset)
    if not own:
        raise LSMRLError(f"{dataset.root}: the test split has no infrared captions to retrieve")
    texts = sorted(set(own.values()))
    index = {text: i for i, text in enumerate(texts)}
    text_features = torch.cat([encode_text(texts[i:i + 256]) for i in range(0, len(texts), 256)])
    best = (images @ text_features.t()).argmax(1)
    out: dict = {"chance": round(100.0 / len(texts), 2), "captions": len(texts)}
    for modality in MODALITIES:
        rows = [i for i, t in enumerate(dataset.test) if t.modality == modality and t.pid in own]
        hits = [int(best[i]) == index[own[dataset.test[i].pid]] for i in rows]
        out[modality] = {"top1": round(100.0 * float(np.mean(hits)), 2) if hits else None, "tracklets": len(rows)}
    return out
