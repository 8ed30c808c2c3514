"""Zero-shot attribute probing of a CLIP on SynthVVI test identities.

For each probe (e.g. "backpack": "a person with a backpack" vs "a person
without a backpack"), a tracklet is classified by which caption its image
feature (mean of the frames' normalised CLIP features) is closer to, and
compared with the identity's true attribute. Test identities never appear in
training, so accuracy above 50% (balanced) means the language space carries
the attribute. Colour probes are reported for visible tracklets only: in
infrared, colour is not in the pixels.

The **language probe** (:func:`probe_language`, ``python -m lsmrl language-probe``) asks whether the text
describes a person the same way in both modalities, per modality: ``attribute_balanced_accuracy`` over the
attributes near-infrared pixels show (:data:`SHARED_PROBES`; colour left out, "tall" and "thick top" reported
apart: not observable in a height-normalised crop, thermal only), and ``caption_top1``: a tracklet retrieves its
identity's colour-free caption among those of every identity of the split (identical captions count as
correct; chance 100 / distinct captions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lsmrl.data.tracklet import INFRARED, MODALITIES, VISIBLE, VVIDataset
from lsmrl.device import autocast_context
from lsmrl.engine.data import eval_loader
from lsmrl.errors import LSMRLError
from lsmrl.synth.captions import attribute_probes, probe_truth
from lsmrl.synth.identities import PALETTE

#: The attribute probes whose attribute near-infrared pixels show (both modalities can be asked about them).
SHARED_PROBES = ("backpack", "bag", "hat", "striped top", "checked top", "logo top", "long sleeves", "long hair",
                 "skirt", "shorts", "boots", "broad")
#: Probes reported apart: "tall" is not observable in a height-normalised crop, "thick top" is thermal only.
APART_PROBES = ("tall", "thick top")


def probe_texts() -> list[str]:
    return [text for pair in attribute_probes().values() for text in pair]


def is_colour_probe(name: str) -> bool:
    return name.endswith(" top") and name[:-4] in PALETTE


def identity_attributes(dataset: VVIDataset, pid: int) -> dict | None:
    attributes = dataset.attributes or {}
    return attributes.get(pid, attributes.get(str(pid)))


@torch.no_grad()
def zero_shot_attribute_accuracy(clip, tokenizer, dataset: VVIDataset, image_size, device) -> dict:
    """{"per_probe": {probe: {modality: {"accuracy", "balanced_accuracy", "n"}}}, "mean_balanced_accuracy": {...}}."""
    clip.eval()
    view = clip_view(clip, tokenizer, image_size, device)
    return attribute_accuracy(view_features(view, dataset, device=device), view.encode_text, dataset)


def attribute_accuracy(images: torch.Tensor, encode_text, dataset: VVIDataset, probes: tuple[str, ...] | None = None
                       ) -> dict:
    """Zero-shot attribute accuracy of normalised per-tracklet ``images`` (one row per ``dataset.test`` entry)
    against ``encode_text(texts) -> normalised features``; ``probes``: the probe names to run (default: all).
    Returns {"per_probe": {probe: {modality: {"accuracy", "balanced_accuracy", "n"}}},
    "mean_balanced_accuracy": {modality: mean over the probes}}."""
    per_probe: dict = {}
    balanced: dict[str, list[float]] = {VISIBLE: [], INFRARED: []}
    for name, (positive, negative) in attribute_probes().items():
        if probes is not None and name not in probes:
            continue
        text = encode_text([positive, negative])
        predicted = (images @ text[0]) > (images @ text[1])
        per_probe[name] = {}
        for modality in (VISIBLE, INFRARED):
            if modality == INFRARED and is_colour_probe(name):
                continue
            truth, guess = [], []
            for index, tracklet in enumerate(dataset.test):
                attributes = identity_attributes(dataset, tracklet.pid)
                value = probe_truth(attributes, name) if (tracklet.modality == modality and attributes) else None
                if value is not None:
                    truth.append(value)
                    guess.append(bool(predicted[index]))
            truth_array, guess_array = np.array(truth, bool), np.array(guess, bool)
            if truth_array.all() or not truth_array.any():
                continue  # one class only: balanced accuracy undefined
            recall_pos = (guess_array & truth_array).sum() / truth_array.sum()
            recall_neg = (~guess_array & ~truth_array).sum() / (~truth_array).sum()
            score = float((recall_pos + recall_neg) / 2)
            per_probe[name][modality] = {"accuracy": round(float((guess_array == truth_array).mean()), 4),
                                         "balanced_accuracy": round(score, 4), "n": int(len(truth))}
            balanced[modality].append(score)
    return {"per_probe": per_probe,
            "mean_balanced_accuracy": {m: round(float(np.mean(v)), 4) if v else None for m, v in balanced.items()}}


# --------------------------------------------------------------------------- the language probe
@dataclass(frozen=True)
class LanguageView:
    """A model seen as (image features per tracklet, text features), both L2-normalised."""

    encode_clips: Callable[[torch.Tensor], torch.Tensor]  # (B, T, 3, H, W) -> (B, D)
    encode_text: Callable[[list[str]], torch.Tensor]  # texts -> (N, D) on the CPU
    image_size: tuple[int, int]
    num_frames: int
    kind: str  # "clip" or "lsmrl"


def clip_view(clip, tokenizer, image_size, device, precision: str = "fp32") -> LanguageView:
    """A CLIP as a :class:`LanguageView`: the mean of a tracklet's normalised frame features, its text features."""

    def encode_clips(frames: torch.Tensor) -> torch.Tensor:
        with autocast_context(device, precision):
            per_frame = F.normalize(clip.encode_image(frames.flatten(0, 1)).float(), dim=-1)
        return F.normalize(per_frame.reshape(*frames.shape[:2], -1).mean(1), dim=-1)

    def encode_text(texts: list[str]) -> torch.Tensor:
        return F.normalize(clip.encode_text(tokenizer(texts).to(device)).float(), dim=-1).cpu()

    return LanguageView(encode_clips, encode_text, tuple(image_size), 4, "clip")


@torch.no_grad()
def view_features(view: LanguageView, dataset: VVIDataset, num_frames: int | None = None, batch_size: int = 16,
                  device=None) -> torch.Tensor:
    """One normalised image feature per ``dataset.test`` tracklet (its frames sampled as the protocol samples)."""
    loader = eval_loader(dataset.test, num_frames or view.num_frames, view.image_size, dataset.test_sampling,
                         batch_size)
    return torch.cat([view.encode_clips(batch["frames"].to(device or "cpu")).cpu() for batch in loader])


@torch.no_grad()
def probe_language(view: LanguageView, dataset: VVIDataset, num_frames: int | None = None, batch_size: int = 16,
                   device=None) -> dict:
    """The language probe (``python -m lsmrl language-probe``) of ``view`` on ``dataset``'s test split: per modality
    ``attribute_balanced_accuracy`` (over :data:`SHARED_PROBES`) and ``caption_top1``, in percent."""
    if not dataset.attributes:
        raise LSMRLError(f"{dataset.root}: no identity attributes (info/synthvvi.json): the probe needs SynthVVI")
    frames = num_frames or view.num_frames
    images = view_features(view, dataset, frames, batch_size, device)
    attributes = attribute_accuracy(images, view.encode_text, dataset, SHARED_PROBES + APART_PROBES)
    captions = caption_retrieval(images, view.encode_text, dataset)
    result = {"kind": view.kind, "frames": frames,
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


def colour_free_captions(tracklets) -> dict[int, str]:
    """Identity -> its colour-free caption: the caption of its infrared tracklets, which is its visible caption
    with every colour word taken out (SynthVVI's captions)."""
    return {t.pid: t.caption for t in tracklets if t.modality == INFRARED and t.caption}


def caption_retrieval(images: torch.Tensor, encode_text, dataset: VVIDataset) -> dict:
    """Top-1 (percent) of each tracklet's own colour-free caption among the split's distinct colour-free captions."""
    own = colour_free_captions(dataset.test)
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
