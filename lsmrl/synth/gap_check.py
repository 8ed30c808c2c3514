"""Is SynthVVI's modality gap real? Two hand-made matchers, Rank-1 per retrieval direction.

* **colour**: joint hue/saturation/value histograms of the person's pixels
  (the foreground mask below) in three horizontal bands, pooled over frames,
  cosine similarity. It should
  re-identify well visible -> visible and be near chance infrared <-> visible,
  because infrared frames carry no colour.
* **shape**: a colour-free silhouette descriptor. A foreground mask is
  estimated per frame against a per-row background model taken from the
  frame's left and right border columns (absolute difference, maximum over
  channels: for infrared frames that is the grey difference); the feature is
  the frames' mean mask at 16 x 8, its row-width and column-height profiles and
  the temporal spread of the row widths (gait), mirror-symmetrised (walking
  direction flips a silhouette), cosine similarity. Both modalities share the geometry of a person, so it should
  work above chance in every direction.

Rank-1 follows the HITSZ-VCM protocol: gallery items with the query's identity
*and* camera are removed; a query never retrieves itself; queries without a
remaining match are skipped. ``chance`` is the expected Rank-1 of a random
ranking (mean share of true matches in the filtered gallery).

Usage: ``python -m lsmrl.synth.gap_check --root DIR [--split test]``.
This module reads the HITSZ-VCM index files itself and needs only numpy and PIL.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

MODALITY_NAMES = {1: "infrared", 2: "visible"}
#: Query and gallery modalities of the four comparisons (within and across modalities).
MODALITY_PAIRS = (
    ("visible", "visible"),
    ("infrared", "infrared"),
    ("infrared", "visible"),
    ("visible", "infrared"),
)


@dataclass(frozen=True)
class LoadedTracklet:
    pid: int
    camid: int
    modality: str
    frames: np.ndarray  # (T, H, W, 3) uint8


def _frame_path(root: Path, split: str, name: str) -> Path:
    relative = f"{name[0:4]}/{'ir' if name[5] == '1' else 'rgb'}/{name[name.find('D') : name.find('T')]}/{name[name.find('F') + 1 :]}"
    split_dir = root / ("Train" if split == "train" else "Test")
    return split_dir / relative if split_dir.is_dir() else root / relative


def load_split(root: str | Path, split: str = "test", max_frames: int | None = None) -> list[LoadedTracklet]:
    """All tracklets of a HITSZ-VCM-layout split, frames decoded (``max_frames`` evenly spaced, if given)."""
    root = Path(root)
    names = (root / "info" / f"{split}_name.txt").read_text().split()
    tracklets = []
    for line in (root / "info" / f"track_{split}_info.txt").read_text().splitlines():
        if not line.strip():
            continue
        modality, start, end, pid, camid = (int(v) for v in line.split())
        frame_names = names[start - 1 : end]
        if max_frames is not None and len(frame_names) > max_frames:
            picks = np.linspace(0, len(frame_names) - 1, max_frames).round().astype(int)
            frame_names = [frame_names[i] for i in picks]
        frames = np.stack([np.asarray(Image.open(_frame_path(root, split, n)).convert("RGB")) for n in frame_names])
        tracklets.append(LoadedTracklet(pid, camid, MODALITY_NAMES[modality], frames))
    return tracklets


def colour_feature(frames: np.ndarray, bins: tuple[int, int, int] = (12, 3, 2), parts: int = 3) -> np.ndarray:
    """HSV histograms of the person's pixels (foreground mask) in ``parts`` horizontal bands, square-rooted.

    The bands (below the head: chest, waist, legs for ``parts=3``) are the classic
    re-id stripes: they tell a red top with black trousers from a black top with red ones.
    """
    t, h, w, _ = frames.shape
    hsv = np.stack([np.asarray(Image.fromarray(f).convert("HSV")) for f in frames]).astype(np.int64)
    mask = np.stack([foreground_mask(f) for f in frames])
    if mask.sum() < 16:  # no person found: fall back to the central band
        mask[:, :, w // 4 : w - w // 4] = True
    hb, sb, vb = bins
    index = (hsv[..., 0] * hb // 256) * sb * vb + (hsv[..., 1] * sb // 256) * vb + hsv[..., 2] * vb // 256
    edges = np.linspace(h * 0.15, h, parts + 1).round().astype(int)
    histograms = []
    for top, bottom in zip(edges[:-1], edges[1:]):
        hist = np.bincount(index[:, top:bottom][mask[:, top:bottom]], minlength=hb * sb * vb).astype(np.float64)
        histograms.append(np.sqrt(hist / max(1.0, hist.sum())))
    return np.concatenate(histograms)


def foreground_mask(frame: np.ndarray, border: int | None = None) -> np.ndarray:
    """Foreground estimate of one frame: difference from a per-row background taken at the borders."""
    h, w, _ = frame.shape
    border = border or max(3, w // 12)
    image = frame.astype(np.float32)
    sides = np.concatenate([image[:, :border], image[:, -border:]], axis=1)
    background = np.median(sides, axis=1)  # (H, 3)
    diff = np.abs(image - background[:, None, :]).max(axis=2)
    spread = np.abs(sides - background[:, None, :]).max(axis=2)
    threshold = np.maximum(14.0, 2.5 * np.median(spread, axis=1, keepdims=True))
    return diff > threshold


def shape_feature(frames: np.ndarray) -> np.ndarray:
    """Silhouette descriptor from foreground masks: no colour, no intensity level."""
    masks = np.stack([foreground_mask(f) for f in frames]).astype(np.float32)  # (T, H, W)
    t, h, w = masks.shape
    h, w = h - h % 32, w - w % 16  # pooling grid; crop the remainder
    masks = masks[:, :h, :w]
    coarse = masks.reshape(t, 16, h // 16, 8, w // 8).mean(axis=(2, 4))  # (T, 16, 8)
    rows = masks.reshape(t, 32, h // 32, w).mean(axis=(2, 3))  # row widths (T, 32)
    cols = masks.mean(axis=1).reshape(t, 16, w // 16).mean(axis=2)  # column heights (T, 16)
    coarse = coarse.mean(0)
    cols = cols.mean(0)
    # walking direction flips the silhouette: make the descriptor mirror-invariant
    coarse = (coarse + coarse[:, ::-1]) / 2.0
    cols = (cols + cols[::-1]) / 2.0
    return np.concatenate([coarse.ravel(), rows.mean(0), cols, rows.std(0)])


def _normalise(features: np.ndarray) -> np.ndarray:
    return features / (np.linalg.norm(features, axis=1, keepdims=True) + 1e-12)


def rank1(
    features: np.ndarray,
    pids: np.ndarray,
    camids: np.ndarray,
    query: np.ndarray,
    gallery: np.ndarray,
) -> tuple[float, float, int]:
    """Rank-1, chance Rank-1 and the number of evaluated queries (cosine similarity, HITSZ-VCM camera filter)."""
    hits, chance, evaluated = 0, 0.0, 0
    similarity = features[query] @ features[gallery].T
    for qi, q in enumerate(query):
        keep = (gallery != q) & ~((pids[gallery] == pids[q]) & (camids[gallery] == camids[q]))
        if not keep.any():
            continue
        matches = pids[gallery][keep] == pids[q]
        if not matches.any():
            continue
        evaluated += 1
        best = int(np.argmax(similarity[qi][keep]))
        hits += bool(matches[best])
        chance += matches.mean()
    return hits / max(1, evaluated), chance / max(1, evaluated), evaluated


def gap_table(tracklets: list[LoadedTracklet]) -> dict[str, dict[str, float]]:
    """``{"colour": {"visible->visible": r1, ...}, "shape": {...}, "chance": {...}}``."""
    pids = np.array([t.pid for t in tracklets])
    camids = np.array([t.camid for t in tracklets])
    modalities = np.array([t.modality for t in tracklets])
    features = {
        "colour": _normalise(np.stack([colour_feature(t.frames) for t in tracklets])),
        "shape": _normalise(np.stack([shape_feature(t.frames) for t in tracklets])),
    }
    table: dict[str, dict[str, float]] = {name: {} for name in (*features, "chance")}
    for q_mod, g_mod in MODALITY_PAIRS:
        key = f"{q_mod}->{g_mod}"
        query = np.nonzero(modalities == q_mod)[0]
        gallery = np.nonzero(modalities == g_mod)[0]
        for name, feats in features.items():
            score, chance, _ = rank1(feats, pids, camids, query, gallery)
            table[name][key] = score
            table["chance"][key] = chance
    return table


def format_table(table: dict[str, dict[str, float]]) -> str:
    columns = [f"{q}->{g}" for q, g in MODALITY_PAIRS]
    short = {"visible": "V", "infrared": "I"}
    header = f"{'Rank-1':<8}" + "".join(f"{short[c.split('->')[0]] + '->' + short[c.split('->')[1]]:>8}" for c in columns)
    lines = [header]
    for name, row in table.items():
        lines.append(f"{name:<8}" + "".join(f"{row[c]:>8.3f}" for c in columns))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lsmrl.synth.gap_check",
        description="Rank-1 of a colour matcher and a silhouette matcher on a SynthVVI (HITSZ-VCM layout) split.",
    )
    parser.add_argument("--root", required=True, help="data set root (with info/)")
    parser.add_argument("--split", choices=("train", "test"), default="test")
    parser.add_argument("--max-frames", type=int, default=None, help="use at most this many frames per tracklet")
    args = parser.parse_args(argv)
    if not (Path(args.root) / "info" / f"track_{args.split}_info.txt").is_file():
        print(f"error: {args.root}/info/track_{args.split}_info.txt not found", file=sys.stderr)
        return 1
    tracklets = load_split(args.root, args.split, args.max_frames)
    if not tracklets:
        print(f"error: the {args.split} split of {args.root} has no tracklets", file=sys.stderr)
        return 1
    identities = len({t.pid for t in tracklets})
    print(f"{args.split} split of {args.root}: {len(tracklets)} tracklets, {identities} identities")
    print(format_table(gap_table(tracklets)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
