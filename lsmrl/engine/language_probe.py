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
from pathlib import Path

import torch
import torch.nn.functional as F

from lsmrl.data.registry import build_dataset
from lsmrl.data.tracklet import VVIDataset
from lsmrl.device import PRECISIONS, get_device, inference_precision
from lsmrl.engine.extract import inference_autocast
from lsmrl.engine.pretrain_clip import read_clip_sidecar
from lsmrl.engine.zero_shot import MODALITIES, LanguageView, clip_view, probe_language
from lsmrl.errors import LSMRLError
from lsmrl.model.backbone import BackboneConfig, build_clip, build_tokenizer
from lsmrl.model.checkpoint import load_model


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


def load_language_view(checkpoint: str | Path, device, precision: str = "auto") -> LanguageView:
    """Read a pretrained CLIP file or an LSMRL checkpoint as a :class:`LanguageView`."""
    device = get_device(device)
    clip_meta = read_clip_sidecar(checkpoint)
    if clip_meta is not None:
        image_size = tuple(clip_meta["image_size"])
        clip = build_clip(BackboneConfig(clip_meta["clip_model"], image_size), checkpoint).to(device).eval()
        return clip_view(clip, build_tokenizer(clip_meta["clip_model"], clip_meta["tokenizer"]), image_size, device,
                         precision)
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
    result = probe_language(load_language_view(checkpoint, device, chosen), dataset, num_frames, batch_size, device)
    return {"checkpoint": str(checkpoint), "precision": chosen, **result}
