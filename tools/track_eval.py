"""Score the people tracker against ground truth: seeded synthetic scenes of 2 to 4 people whose paths cross.

Each scene pastes SynthVVI person clips (rendered here with the generator's
API, visible modality, each identity from its own camera) on a textured static
background with :func:`~lsmrl.data.people.compose_scene`. People walk in
opposite directions (or overtake one another) at nearby heights, so their boxes
overlap in the middle of the clip. The tracker (:func:`detect_people`) is
scored with ``motmetrics`` (IoU >= 0.5 to count a match): IDF1, MOTA and ID
switches over all scenes together. The "auto" query (:func:`select_track`) of
each scene is checked for mixed identities: its boxes are matched to the
ground-truth box of highest IoU (>= 0.5) frame by frame, and it is "mixed" when
more than ``--mix-tolerance`` of its matched frames belong to other people than
its main one.

The tracker's settings (:class:`DetectionConfig`'s defaults) were chosen on
the scenes of seeds 0-19 (``TUNING_SEEDS``); each seed range evaluated is
marked ``held_out`` when it shares no seed with them, and only such a range
measures the tracker rather than its fit.

Run: ``python tools/track_eval.py --scenes 20 --first-seed 0 100 --out checkpoints/evidence/tracking_eval.json``
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import motmetrics as mm
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lsmrl.data.people import (  # noqa: E402
    AUTO,
    DetectionConfig,
    NoPersonFoundError,
    PersonTrack,
    Walker,
    compose_scene,
    detect_people,
    select_track,
)
from lsmrl.data.people.detection import box_iou  # noqa: E402
from lsmrl.synth.cameras import make_cameras, render_background  # noqa: E402
from lsmrl.synth.generate import SynthConfig, identity_plan, render_tracklet_frames, tracklet_plan  # noqa: E402

TUNING_SEEDS = range(20)
"""The scenes the tracker's default settings were chosen on."""


@dataclass(frozen=True)
class SceneSpec:
    """How the synthetic scenes are drawn: size, length, people per scene, their heights and speeds (px)."""

    height: int = 240
    width: int = 640
    num_frames: int = 40
    people: tuple[int, int] = (2, 4)
    person_height: tuple[int, int] = (112, 150)
    speed: tuple[int, int] = (6, 12)
    lane_spread: int = 24  # people walk at tops within this many px of each other: their boxes overlap
    synth_seed: int = 0


def person_clip(pid: int, frames: int, height: int, spec: SceneSpec) -> np.ndarray:
    """Identity ``pid``'s visible tracklet (frames, height, height // 2, 3) from the SynthVVI generator."""
    config = SynthConfig(seed=spec.synth_seed, frames=(frames, frames))
    cameras = make_cameras(config.seed, config.cameras)
    camera = cameras[pid % len(cameras)]
    background = render_background(camera, config.seed, config.height, config.width, config.supersample)
    attrs, _ = identity_plan(config, pid)
    plan, rng = tracklet_plan(config, attrs, camera, pid, 0)
    clip = render_tracklet_frames(config, attrs, "visible", camera, background, plan, rng)
    return np.stack([cv2.resize(f, (height // 2, height), interpolation=cv2.INTER_LINEAR) for f in clip])


def crossing_scene(seed: int, spec: SceneSpec = SceneSpec()) -> tuple[np.ndarray, list[dict[int, tuple]]]:
    """Scene ``seed``: frames (T, H, W, 3) RGB and, per person, {frame: box}.

    Paths cross by construction: people alternate between walking right and
    walking left, and person k passes the middle of the frame (within 40 px) at
    a frame spread evenly over the clip, so any two walking opposite ways cross
    between their two passing frames. A person is pasted only in the frames
    where they are wholly inside the scene (they enter and leave at the sides).
    """
    rng = np.random.default_rng(seed)
    count = int(rng.integers(spec.people[0], spec.people[1] + 1))
    pids = rng.choice(np.arange(1, 400), size=count, replace=False)
    lane = int(rng.integers(8, spec.height - spec.person_height[1] - spec.lane_spread - 8))
    passing = np.linspace(0.25, 0.75, count) * (spec.num_frames - 1) + rng.integers(-2, 3, count)
    walkers = []
    for k, pid in enumerate(pids):
        height = int(rng.integers(spec.person_height[0], spec.person_height[1] + 1))
        width = height // 2
        top = min(lane + int(rng.integers(0, spec.lane_spread + 1)), spec.height - height)
        speed = int(rng.integers(spec.speed[0], spec.speed[1] + 1)) * (1 if k % 2 == 0 else -1)
        middle = spec.width // 2 - width // 2 + int(rng.integers(-40, 41))
        x_start = int(round(middle - speed * passing[k]))  # x at frame 0, possibly outside the scene
        inside = [t for t in range(spec.num_frames) if 0 <= x_start + speed * t <= spec.width - width]
        clip = person_clip(int(pid), int(rng.integers(16, 25)), height, spec)
        walkers.append(Walker(clip, start=(x_start, top), velocity=(speed, 0), first_frame=inside[0],
                              last_frame=inside[-1]))
    return compose_scene(walkers, num_frames=spec.num_frames, size=(spec.height, spec.width), seed=seed)


def iou_distances(truth_boxes, track_boxes, min_iou: float = 0.5) -> np.ndarray:
    """motmetrics' distance matrix: 1 - IoU, NaN (no match allowed) below ``min_iou``.

    The same as ``mm.distances.iou_matrix(..., max_iou=1 - min_iou)`` on (x0, y0, x1, y1) boxes, which
    motmetrics 1.4.0 cannot run under NumPy 2 (it calls the removed ``np.asfarray``).
    """
    a = np.asarray(truth_boxes, np.float64).reshape(-1, 4)
    b = np.asarray(track_boxes, np.float64).reshape(-1, 4)
    iou = box_iou(a, b) if len(a) and len(b) else np.zeros((len(a), len(b)))
    return np.where(iou >= min_iou, 1.0 - iou, np.nan)


def accumulate(tracks: list[PersonTrack], truth: list[dict[int, tuple]], num_frames: int) -> mm.MOTAccumulator:
    """motmetrics' frame-by-frame matching of the tracks' (dense) boxes to the pasted boxes (IoU >= 0.5)."""
    acc = mm.MOTAccumulator(auto_id=True)
    for t in range(num_frames):
        gt_ids = [i for i, boxes in enumerate(truth) if t in boxes]
        hyp = [(track.id, track.box_at(t)) for track in tracks if track.box_at(t) is not None]
        acc.update(gt_ids, [track_id for track_id, _ in hyp],
                   iou_distances([truth[i][t] for i in gt_ids], [box for _, box in hyp]))
    return acc


def identity_mix(track: PersonTrack, truth: list[dict[int, tuple]]) -> dict:
    """Whom the track's boxes show: per-frame best ground-truth match (IoU >= 0.5), the main person's share."""
    matched: list[int] = []
    unmatched = 0
    for t, box in zip(track.frame_indices, track.boxes):
        present = [i for i, boxes in enumerate(truth) if t in boxes]
        if not present:
            unmatched += 1
            continue
        overlap = box_iou(np.array([box], float), np.array([truth[i][t] for i in present], float))[0]
        best = int(overlap.argmax())
        if overlap[best] >= 0.5:
            matched.append(present[best])
        else:
            unmatched += 1
    counts = Counter(matched)
    main_share = counts.most_common(1)[0][1] / len(matched) if matched else 0.0
    return {"people": dict(sorted((int(k), v) for k, v in counts.items())), "main_share": round(main_share, 4),
            "unmatched_frames": unmatched, "length": track.length}


def evaluate(seeds: list[int], spec: SceneSpec, config: DetectionConfig, mix_tolerance: float) -> dict:
    """Scores over the scenes of ``seeds``: motmetrics' overall summary and the auto picks' identity check."""
    accumulators, names, scenes = [], [], []
    for seed in seeds:
        frames, truth = crossing_scene(seed, spec)
        try:
            tracks = detect_people(frames, config)
        except NoPersonFoundError:
            tracks = []
        accumulators.append(accumulate(tracks, truth, len(frames)))
        names.append(f"scene{seed}")
        row = {"seed": seed, "people": len(truth), "tracks": len(tracks)}
        if tracks:
            auto = select_track(tracks, AUTO)
            mix = identity_mix(auto, truth)
            row["auto"] = {"id": auto.id, "looks_mixed": bool(auto.looks_mixed), **mix,
                           "mixes_identities": mix["main_share"] < 1.0 - mix_tolerance}
        scenes.append(row)
    metrics = ["idf1", "idp", "idr", "mota", "motp", "num_switches", "num_false_positives", "num_misses",
               "num_fragmentations", "mostly_tracked", "num_unique_objects"]
    summary = mm.metrics.create().compute_many(accumulators, metrics=metrics, names=names, generate_overall=True)
    overall = {k: float(v) for k, v in summary.loc["OVERALL"].items()}
    per_scene = {name: {"idf1": round(float(summary.loc[name, "idf1"]), 4),
                        "num_switches": int(summary.loc[name, "num_switches"])} for name in names}
    for row in scenes:
        row.update(per_scene[f"scene{row['seed']}"])
    mixed = [row["seed"] for row in scenes if row.get("auto", {}).get("mixes_identities")]
    return {
        "overall": {k: (round(v, 4) if k in ("idf1", "idp", "idr", "mota", "motp") else int(v)) for k, v in overall.items()},
        "auto_picks_mixing_identities": mixed,
        "auto_picks_flagged_mixed": [row["seed"] for row in scenes if row.get("auto", {}).get("looks_mixed")],
        "scenes_without_tracks": [row["seed"] for row in scenes if not row["tracks"]],
        "scenes": scenes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenes", type=int, default=20, help="number of scenes (seeds first-seed ...)")
    parser.add_argument("--first-seed", type=int, nargs="+", default=[0],
                        help="first seed of each range of scenes scored (e.g. 0 100: the tuning and a held-out range)")
    parser.add_argument("--mix-tolerance", type=float, default=0.1,
                        help="share of an auto pick's matched frames that may show other people")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here")
    args = parser.parse_args(argv)
    spec, config = SceneSpec(), DetectionConfig()
    ranges = []
    for first in args.first_seed:
        seeds = list(range(first, first + args.scenes))
        started = time.perf_counter()
        scored = evaluate(seeds, spec, config, args.mix_tolerance)
        ranges.append({"seeds": f"{seeds[0]}-{seeds[-1]}", "held_out": not set(seeds) & set(TUNING_SEEDS),
                       "seconds": round(time.perf_counter() - started, 1), **scored})
    result = {
        "command": "python tools/track_eval.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        "tuning_seeds": f"{TUNING_SEEDS[0]}-{TUNING_SEEDS[-1]}",
        "scene_spec": asdict(spec),
        "detection_config": asdict(config),
        "mix_tolerance": args.mix_tolerance,
        "match_iou": 0.5,
        "ranges": ranges,
    }
    text = json.dumps(result, indent=2)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    summary_keys = ("seeds", "held_out", "overall", "auto_picks_mixing_identities", "auto_picks_flagged_mixed",
                    "scenes_without_tracks", "seconds")
    print(json.dumps([{k: r[k] for k in summary_keys} for r in ranges], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
