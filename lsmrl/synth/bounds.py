"""Difficulty bounds of a SynthVVI split: what matchers that know nothing, or everything, reach.

``python -m lsmrl bounds --root D [--split test] [--json F]`` evaluates
five matchers under the HITSZ-VCM protocol (gallery items with the query's
identity *and* camera removed, queries without a remaining match skipped), in
both cross-modal directions, with Rank-1 and mAP in percent:

* ``chance``: a random ranking (the mean over ``CHANCE_DRAWS`` seeded random
  similarity matrices).
* ``colour``: HSV histograms of the person's pixels in three bands over 12
  evenly spaced frames (:func:`~lsmrl.synth.gap_check.colour_feature`).
  Across modalities it should give nothing: infrared frames carry no colour,
  and the NIR grey of a dye is not a function of its visible luminance.
* ``attribute_oracle``: the generator's ground-truth attributes, **restricted
  to those that reach the infrared pixels** (body, hair length, garment kinds,
  sleeves, accessories, and, for near-infrared, each part's NIR grey level
  quantised to steps of 0.1 reflectance and a pattern only where its dye's NIR
  contrast shows it; for thermal, the thickness levels). Colours never enter.
  It is an upper bound on the identity information that infrared frames carry.
* ``silhouette_12`` / ``silhouette_1``: the colour-free silhouette descriptor
  (:func:`~lsmrl.synth.gap_check.shape_feature`) of 12 evenly spaced
  frames, or of one (the middle) frame.

The data set's targets (checked in ``tests/test_synth_v2.py``): colour
infrared-to-visible Rank-1 at most 2x chance, the attribute oracle at least
90%, one frame's silhouette at most 15%: colour gives nothing across
modalities, the identity information is there, and one frame is not enough.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from lsmrl.data.tracklet import DIRECTION_MODALITIES
from lsmrl.errors import DatasetLayoutError
from lsmrl.evaluation.rank import evaluate_rank
from lsmrl.synth.gap_check import LoadedTracklet, colour_feature, load_split, shape_feature
from lsmrl.synth.identities import ACCESSORY_NIR_FACTOR, HAIR_NIR, NIR_REFLECTANCE, SHOE_NIR

MATCHERS = ("chance", "colour", "attribute_oracle", "silhouette_12", "silhouette_1")
CHANCE_DRAWS = 20
SEQUENCE_FRAMES = 12
NIR_STEP = 0.1  # reflectance quantisation of the oracle: about 20 grey levels at a typical illuminator gain
PATTERN_NIR_CONTRAST = 0.08  # below this reflectance difference a pattern's dye does not show in NIR


def _even_frames(frames: np.ndarray, count: int) -> np.ndarray:
    picks = np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int)
    return frames[picks]


def _middle_frame(frames: np.ndarray) -> np.ndarray:
    return frames[len(frames) // 2 : len(frames) // 2 + 1]


def infrared_attributes(attributes: dict, infrared: str) -> list[str]:
    """The ground-truth attributes of one identity (``synthvvi.json`` form) that reach infrared pixels, as tokens."""
    body, upper, lower = attributes["body"], attributes["upper"], attributes["lower"]
    acc, shoes, hair = attributes["accessories"], attributes["shoes"], attributes["hair"]
    tokens = [
        f"height={body['height']}",
        f"build={body['build']}",
        f"hair={hair['length']}",
        f"sleeves={upper['sleeves']}",
        f"lower={lower['kind']}",
        f"shoes={shoes['kind']}",
    ]
    tokens += [f"{item}={bool(acc[item])}" for item in ("backpack", "bag", "hat")]
    if infrared == "nir":
        def level(value: float) -> int:
            return int(round(value / NIR_STEP))

        contrast = abs(NIR_REFLECTANCE[upper["colour"]] - NIR_REFLECTANCE[upper["pattern_colour"]])
        pattern = upper["pattern"] if contrast >= PATTERN_NIR_CONTRAST else "plain"
        tokens += [
            f"pattern={pattern}",
            f"upper_nir={level(NIR_REFLECTANCE[upper['colour']])}",
            f"lower_nir={level(NIR_REFLECTANCE[lower['colour']])}",
            f"shoe_nir={level(SHOE_NIR[shoes['colour']])}",
            f"hair_nir={level(HAIR_NIR[hair['colour']])}",
        ]
        if pattern != "plain":
            tokens.append(f"pattern_nir={level(NIR_REFLECTANCE[upper['pattern_colour']])}")
        for item in ("backpack", "bag", "hat"):
            if acc[item]:
                tokens.append(f"{item}_nir={level(NIR_REFLECTANCE[acc[item + '_colour']] * ACCESSORY_NIR_FACTOR)}")
    else:  # thermal: pattern geometry shows faintly, thickness shows as temperature
        tokens += [
            f"pattern={upper['pattern']}",
            f"upper_level={attributes['thermal']['upper_level']}",
            f"lower_level={min(2, int(attributes['thermal']['lower_thickness'] * 3))}",
        ]
    return tokens


def _one_hot(token_lists: list[list[str]]) -> np.ndarray:
    vocabulary = {token: i for i, token in enumerate(sorted({t for tokens in token_lists for t in tokens}))}
    features = np.zeros((len(token_lists), len(vocabulary)), np.float32)
    for row, tokens in enumerate(token_lists):
        features[row, [vocabulary[t] for t in tokens]] = 1.0
    return features


def _normalise(features: np.ndarray) -> np.ndarray:
    return features / (np.linalg.norm(features, axis=1, keepdims=True) + 1e-12)


def matcher_features(tracklets: list[LoadedTracklet], manifest: dict) -> dict[str, np.ndarray]:
    """L2-normalised features of every tracklet for each matcher but chance."""
    infrared = manifest.get("infrared", "thermal" if manifest.get("synthvvi_version", 1) == 1 else "nir")
    identities = manifest["identities"]
    return {
        "colour": _normalise(np.stack([colour_feature(_even_frames(t.frames, SEQUENCE_FRAMES)) for t in tracklets])),
        "attribute_oracle": _normalise(_one_hot([infrared_attributes(identities[str(t.pid)], infrared) for t in tracklets])),
        "silhouette_12": _normalise(np.stack([shape_feature(_even_frames(t.frames, SEQUENCE_FRAMES)) for t in tracklets])),
        "silhouette_1": _normalise(np.stack([shape_feature(_middle_frame(t.frames)) for t in tracklets])),
    }


def _metrics(similarity: np.ndarray, pids: np.ndarray, camids: np.ndarray, query: np.ndarray, gallery: np.ndarray) -> dict:
    result = evaluate_rank(-similarity, pids[query], pids[gallery], camids[query], camids[gallery], max_rank=1)
    return {"rank1": 100.0 * float(result["cmc"][0]), "mAP": 100.0 * float(result["mAP"])}


def bounds_table(tracklets: list[LoadedTracklet], manifest: dict, seed: int = 0) -> dict:
    """``{matcher: {direction: {"rank1": %, "mAP": %}}}`` for every matcher of :data:`MATCHERS`."""
    pids = np.array([t.pid for t in tracklets])
    camids = np.array([t.camid for t in tracklets])
    modalities = np.array([t.modality for t in tracklets])
    features = matcher_features(tracklets, manifest)
    table: dict = {name: {} for name in MATCHERS}
    rng = np.random.default_rng(seed)
    for direction, (q_mod, g_mod) in DIRECTION_MODALITIES.items():
        query, gallery = np.nonzero(modalities == q_mod)[0], np.nonzero(modalities == g_mod)[0]
        draws = [_metrics(rng.random((len(query), len(gallery))), pids, camids, query, gallery) for _ in range(CHANCE_DRAWS)]
        table["chance"][direction] = {key: float(np.mean([d[key] for d in draws])) for key in ("rank1", "mAP")}
        for name, feats in features.items():
            table[name][direction] = _metrics(feats[query] @ feats[gallery].T, pids, camids, query, gallery)
    return _rounded(table)


def _rounded(value):
    if isinstance(value, float):
        return round(value, 2)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    return value


def check_targets(table: dict) -> list[str]:
    """The data set's difficulty targets that ``table`` misses (empty = all hold)."""
    misses = []
    colour, chance = table["colour"]["infrared_to_visible"]["rank1"], table["chance"]["infrared_to_visible"]["rank1"]
    if colour > 2.0 * chance:
        misses.append(f"colour infrared-to-visible Rank-1 {colour:.1f}% > 2 x chance ({2 * chance:.1f}%)")
    for direction in DIRECTION_MODALITIES:
        oracle = table["attribute_oracle"][direction]["rank1"]
        if oracle < 90.0:
            misses.append(f"attribute oracle {direction} Rank-1 {oracle:.1f}% < 90%")
        single = table["silhouette_1"][direction]["rank1"]
        if single > 15.0:
            misses.append(f"single-frame silhouette {direction} Rank-1 {single:.1f}% > 15%")
    return misses


def format_bounds(table: dict) -> str:
    """A Markdown table: one row per matcher, Rank-1 and mAP per direction."""
    lines = [
        "| matcher | IR->VIS Rank-1 | IR->VIS mAP | VIS->IR Rank-1 | VIS->IR mAP |",
        "|---|---|---|---|---|",
    ]
    for name in MATCHERS:
        i2v, v2i = table[name]["infrared_to_visible"], table[name]["visible_to_infrared"]
        lines.append(f"| {name} | {i2v['rank1']:.1f} | {i2v['mAP']:.1f} | {v2i['rank1']:.1f} | {v2i['mAP']:.1f} |")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", required=True, help="SynthVVI root (with info/synthvvi.json)")
    parser.add_argument("--split", choices=("train", "test"), default="test")
    parser.add_argument("--json", default=None, metavar="F", help="also write the table as JSON")


def run(args: argparse.Namespace) -> int:
    root = Path(args.root)
    manifest_path = root / "info" / "synthvvi.json"
    if not (root / "info" / f"track_{args.split}_info.txt").is_file() or not manifest_path.is_file():
        raise DatasetLayoutError(f"{root} is not a SynthVVI root (info/track_{args.split}_info.txt or "
                                 "info/synthvvi.json missing); make one with `python -m lsmrl synth --out DIR`")
    manifest = json.loads(manifest_path.read_text())
    tracklets = load_split(root, args.split)
    if not tracklets:
        raise DatasetLayoutError(f"the {args.split} split of {root} has no tracklets")
    table = bounds_table(tracklets, manifest)
    version = manifest.get("synthvvi_version", 1)
    infrared = manifest.get("infrared", "thermal" if version == 1 else "nir")
    print(f"SynthVVI v{version} ({infrared}), {args.split} split of {root}: {len(tracklets)} tracklets, "
          f"{len({t.pid for t in tracklets})} identities (percent, HITSZ-VCM protocol)")
    print(format_bounds(table))
    misses = check_targets(table)
    print("targets: all hold" if not misses else "targets missed: " + "; ".join(misses))
    if args.json:
        payload = {**table, "meta": {"root": root.name, "split": args.split, "synthvvi_version": version,
                                     "infrared": infrared, "tracklets": len(tracklets),
                                     "targets_missed": misses}}
        Path(args.json).write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    return 0
