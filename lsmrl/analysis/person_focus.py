"""Do the attention maps lie on the person? Measured on SynthVVI, where the person masks are known.

Two measurements on unseen (test-split) identities, each a cross-modal pair:
the identity's first infrared tracklet against its first visible one (queries
alternate between the two directions), rendered with their masks by
:mod:`lsmrl.analysis.synth_masks`:

* :func:`person_focus`: for each explanation method of
  :mod:`lsmrl.analysis.attention` (Grad-CAM, HiResCAM, occlusion, rollout), the
  person's share of the query's map when the target is the similarity to the
  pair's other tracklet (:func:`~lsmrl.analysis.attention.person_concentration`;
  a map that ignores the person scores the person's area fraction);
* :func:`hiding_test`: the ground truth those maps should agree with: the
  similarity with the person hidden (mean colour) and with as many background
  pixels hidden, drawn at random.

``python -m lsmrl.analysis.person_focus [--checkpoint C] [--count 10]
[--random-seeds 0 1 ...]`` prints both for a checkpoint and for random models of
the same config (seed 0: the comparison ``tests/test_attention.py`` makes).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from lsmrl.analysis.attention import EXPLANATION_METHODS, EmbeddingSimilarityTarget, explain, person_concentration
from lsmrl.analysis.synth_masks import SynthTrackletWithMasks, render_tracklet_with_masks
from lsmrl.data.frame_indices import sample_frame_indices
from lsmrl.data.sampling import build_transform
from lsmrl.model.checkpoint import load_model
from lsmrl.model.lsmrl import LSMRL

FOCUS_METHODS = EXPLANATION_METHODS
DEFAULT_FLAGS = {"seed": 0, "frames": (16, 32), "infrared": "nir", "height": 128, "width": 64, "cameras": 6,
                 "infrared_tracklets": 2, "visible_tracklets": 2, "train_identities": 500}


def synth_flags(meta: dict) -> dict:
    """The generator flags of a checkpoint's SynthVVI: its manifest when the data root exists, else the defaults
    (with the sidecar's number of training identities)."""
    data = meta.get("data") or {}
    manifest = Path(str(data.get("root", ""))) / "info" / "synthvvi.json"
    flags = dict(DEFAULT_FLAGS)
    if data.get("root") and manifest.is_file():
        manifest_data = json.loads(manifest.read_text())
        flags.update({k: v for k, v in manifest_data.get("args", {}).items() if k in flags})
        flags["seed"] = manifest_data.get("seed", flags["seed"])
        if manifest_data.get("synthvvi_version", 1) == 1:  # v1 files: thermal infrared, no range of lengths
            flags["infrared"] = "thermal"
        flags["frames"] = tuple(flags["frames"]) if isinstance(flags["frames"], list) else flags["frames"]
    elif data.get("train_identities"):
        flags["train_identities"] = int(data["train_identities"])
    return flags


def cross_modal_pairs(config, flags: dict, count: int) -> Iterator[tuple]:
    """``count`` unseen identities: (query, query frames, gallery, gallery frames, coverage) per identity.

    The frames are normalised model inputs (T, 3, H, W) at ``config.image_size``; ``coverage`` (T, H, W) is the
    person's share of each input pixel. Queries alternate between infrared (-> visible) and visible (-> infrared).
    """
    transform = build_transform(tuple(config.image_size))
    render_flags = {k: v for k, v in flags.items() if k != "train_identities"}
    first_visible = flags["infrared_tracklets"]
    for number in range(count):
        pid = flags["train_identities"] + 1 + number
        query_index, gallery_index = (0, first_visible) if number % 2 == 0 else (first_visible, 0)
        query: SynthTrackletWithMasks = render_tracklet_with_masks(pid, query_index, **render_flags)
        gallery = render_tracklet_with_masks(pid, gallery_index, **render_flags)
        picks = sample_frame_indices(len(query.frames), config.num_frames, "evenly")
        query_frames = transform(list(query.frames[picks]))
        gallery_frames = transform(list(gallery.frames[sample_frame_indices(len(gallery.frames), config.num_frames)]))
        coverage = torch.from_numpy(query.coverage[picks])[:, None]
        coverage = torch.nn.functional.interpolate(coverage, size=query_frames.shape[-2:], mode="bilinear")[:, 0]
        yield query, query_frames, gallery, gallery_frames, coverage


def person_focus(model, flags: dict, count: int = 10, methods=FOCUS_METHODS, progress=None) -> dict:
    """Per method, the person's share of each query's map (a list of ``count`` values); ``"area"``: the person's
    area fraction of each query (what a map that ignores the person scores)."""
    model.eval()
    result: dict[str, list[float]] = {method: [] for method in methods}
    result["area"] = []
    for query, query_frames, gallery, gallery_frames, coverage in cross_modal_pairs(model.config, flags, count):
        with torch.no_grad():
            gallery_embedding = model.embed(gallery_frames[None], [gallery.modality], normalize=False)[0]
        target = EmbeddingSimilarityTarget(gallery_embedding)
        for method in methods:
            maps = explain(model, query_frames, query.modality, target, method)
            result[method].append(person_concentration(maps.maps, coverage.numpy()))
        result["area"].append(float(coverage.mean()))
        if progress is not None:
            progress.update(1)
    return result


def hiding_test(model, flags: dict, count: int = 10, seed: int = 0) -> np.ndarray:
    """(count, 3): a query's cosine similarity to the pair's other tracklet, with the person hidden (the
    normalisation's mean colour, pixels of coverage > 0.5), and with as many background pixels hidden (drawn at
    random, per frame)."""
    model.eval()
    generator = np.random.default_rng(seed)
    rows = []
    for query, query_frames, gallery, gallery_frames, coverage in cross_modal_pairs(model.config, flags, count):
        with torch.no_grad():
            gallery_embedding = model.embed(gallery_frames[None], [gallery.modality])[0]

            def similarity(frames):
                embedding = model.embed(frames[None], [query.modality])[0]
                return float(torch.nn.functional.cosine_similarity(embedding, gallery_embedding, dim=0))

            person = (coverage > 0.5)[:, None].expand_as(query_frames)
            background = torch.zeros_like(person)
            for t in range(len(query_frames)):
                outside = torch.nonzero(~person[t, 0])
                picked = outside[torch.from_numpy(generator.choice(len(outside), int(person[t, 0].sum()),
                                                                   replace=False))]
                background[t, :, picked[:, 0], picked[:, 1]] = True
            rows.append((similarity(query_frames), similarity(query_frames.masked_fill(person, 0.0)),
                         similarity(query_frames.masked_fill(background, 0.0))))
    return np.asarray(rows, dtype=np.float64)


def random_twin(model, seed: int = 0):
    """A randomly initialised model of ``model``'s config (prompt bank refreshed, eval mode): the control."""
    torch.manual_seed(seed)
    twin = LSMRL(model.config)
    twin.refresh_prompt_bank()
    return twin.eval()


def _mean_text(values) -> str:
    """Mean over the tracklets whose map has any positive mass (NaN: none); "n/a" when no map has."""
    values = np.asarray(values, dtype=np.float64)
    return f"{values[np.isfinite(values)].mean():.2f}" if np.isfinite(values).any() else "n/a"


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    parser = argparse.ArgumentParser(prog="python -m lsmrl.analysis.person_focus", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=str(Path(__file__).resolve().parents[2] / "checkpoints"
                                                    / "lsmrl-mini-synthvvi.safetensors"))
    parser.add_argument("--count", type=int, default=10, help="test identities (default 10)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--random-seeds", type=int, nargs="+", default=[0],
                        help="seeds of the random control models (default 0; the first is the one compared)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    trained, meta = load_model(args.checkpoint)
    flags = synth_flags(meta)
    models = {"trained": trained, **{f"random (seed {seed})": random_twin(trained, seed) for seed in args.random_seeds}}
    focus, hiding = {}, {}
    with tqdm(total=len(models) * args.count, desc="maps", unit="tracklet") as bar:
        for name, model in models.items():
            focus[name] = person_focus(model, flags, args.count, progress=bar)
            if name == "trained" or name.endswith(f"seed {args.random_seeds[0]})"):
                hiding[name] = hiding_test(model, flags, args.count)
    area = float(np.mean(focus["trained"]["area"]))
    control = f"random (seed {args.random_seeds[0]})"
    names = list(models)
    print(f"person's share of the query's map, {args.count} test identities (a map blind to the person: {area:.2f})")
    print("| method | " + " | ".join(names) + f" | trained higher than {control} on |")
    print("|---|" + "---|" * (len(names) + 1))
    for method in FOCUS_METHODS:
        means = [_mean_text(focus[name][method]) for name in names]
        wins = int(np.sum(np.asarray(focus["trained"][method]) > np.asarray(focus[control][method])))
        print(f"| {method} | " + " | ".join(means) + f" | {wins} of {args.count} |")
    print("\nsimilarity to the same identity in the other modality (mean), with parts of the query hidden")
    print("| model | as is | person hidden | as much background hidden | hiding the person lowers it more on |")
    print("|---|---|---|---|---|")
    for name, rows in hiding.items():
        base, person, background = rows.mean(axis=0)
        more = int(np.sum(rows[:, 0] - rows[:, 1] > rows[:, 0] - rows[:, 2]))
        print(f"| {name} | {base:.3f} | {person:.3f} | {background:.3f} | {more} of {len(rows)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
