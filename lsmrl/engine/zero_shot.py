"""Zero-shot attribute probing of a CLIP on SynthVVI test identities.

For each probe (e.g. "backpack": "a person with a backpack" vs "a person
without a backpack"), a tracklet is classified by which caption its image
feature (mean of the frames' normalised CLIP features) is closer to, and
compared with the identity's true attribute. Test identities never appear in
training, so accuracy above 50% (balanced) means the language space carries
the attribute. Colour probes are reported for visible tracklets only: in
infrared, colour is not in the pixels.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lsmrl.data.sampling import build_transform, load_tracklet
from lsmrl.data.synth.captions import attribute_probes, probe_truth
from lsmrl.data.synth.identities import PALETTE
from lsmrl.data.tracklet import INFRARED, VISIBLE, VVIDataset


def probe_texts() -> list[str]:
    return [text for pair in attribute_probes().values() for text in pair]


def is_colour_probe(name: str) -> bool:
    return name.endswith(" top") and name[:-4] in PALETTE


def identity_attributes(dataset: VVIDataset, pid: int) -> dict | None:
    attributes = dataset.attributes or {}
    return attributes.get(pid, attributes.get(str(pid)))


@torch.no_grad()
def tracklet_image_features(clip, dataset: VVIDataset, image_size, device, num_frames: int = 4,
                            batch: int = 32) -> torch.Tensor:
    transform = build_transform(tuple(image_size), train=False)
    features = []
    for start in range(0, len(dataset.test), batch):
        clips = [transform(list(load_tracklet(t, num_frames, "evenly"))) for t in dataset.test[start:start + batch]]
        frames = torch.stack(clips).to(device)
        encoded = F.normalize(clip.encode_image(frames.flatten(0, 1)), dim=-1)
        features.append(F.normalize(encoded.reshape(len(clips), num_frames, -1).mean(1), dim=-1).cpu())
    return torch.cat(features)


@torch.no_grad()
def zero_shot_attribute_accuracy(clip, tokenizer, dataset: VVIDataset, image_size, device) -> dict:
    """{"per_probe": {probe: {modality: {"accuracy", "balanced_accuracy", "n"}}}, "mean_balanced_accuracy": {...}}."""
    clip.eval()
    images = tracklet_image_features(clip, dataset, image_size, device)

    def encode_text(texts: list[str]) -> torch.Tensor:
        return F.normalize(clip.encode_text(tokenizer(texts).to(device)), dim=-1).cpu()

    return attribute_accuracy(images, encode_text, dataset)


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
