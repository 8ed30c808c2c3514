"""Write SynthVVI in the HITSZ-VCM on-disk layout, exactly as the official loader reads it.

Layout details, read from MITML's ``data_manager.py`` (VCM-project233/MITML,
the HITSZ-VCM authors' loader: ``decoder_pic_path``, ``VCM._get_names``,
``VCM._get_tracks``, ``VCM._get_query_idx``, ``VCM._process_data_*``):

* **Frame names** (``info/train_name.txt``, ``info/test_name.txt``, one name a
  line, read with ``line.rstrip()``) look like ``0001M1D3T1F25.jpg``:
  characters ``[0:4]`` are the 4-digit person id; character ``[5]`` is the
  modality code (``1`` = infrared -> folder ``ir``, anything else = visible ->
  ``rgb``; we write ``2``); the camera folder is the substring from the first
  ``D`` up to the first ``T`` *including the D* (``D3``); the frame *file* is
  everything after the first ``F`` (``25.jpg``). The track number ``T<k>`` is
  **not** part of the path, so frame numbers must be unique per
  ``<pid>/<ir|rgb>/D<cam>`` folder: we number ``F`` consecutively per folder
  across that folder's tracks (track 1 = F1..F12, track 2 = F13..F24).
  No separators; pids must have 4 digits (so at most 9999 identities).
* **Frame path** = ``<pid4>/<ir|rgb>/D<cam>/<F>.jpg``. MITML joins it to the
  data root directly; widely used forks of the same loader prefix ``Train/`` or
  ``Test/`` (the folders of the HITSZ-VCM release). We write
  ``<out>/Train/...`` and ``<out>/Test/...`` (``layout="split"``, default) or,
  with ``layout="flat"``, ``<out>/<pid4>/...`` which the unmodified MITML
  ``decoder_pic_path`` resolves against ``<out>`` (train and test pids are
  disjoint, so the two splits never collide).
* **Tracks** (``info/track_train_info.txt``, ``info/track_test_info.txt``): one
  tracklet a line, ``modality start end pid camid``, single spaces, integers;
  ``start``/``end`` are 1-based and inclusive into the split's name list
  (MITML slices ``names[start-1:end]``); tracklets shorter than ``min_seq_len``
  (12) are dropped by the loader, so the default is 12 frames.
* **Queries** (``info/query_IDX.txt``): 1-based row numbers of
  ``track_test_info.txt`` that are queries (infrared to visible); the other test
  rows are the gallery, and the roles swap for visible to infrared. MITML parses
  the file line by line but keeps only the **last** line's integers, so we write
  all indices on **one** line, space-separated (a reader that reads every line
  gets the same set). All infrared test tracklets are queries, like HITSZ-VCM.

Every file is written deterministically: JPEGs with fixed quality and no
metadata, text files with ``\\n`` line ends, JSON with sorted keys and floats
rounded to 4 decimals.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lsmrl.errors import LSMRLError

MODALITY_CODES = {"infrared": 1, "visible": 2}
MODALITY_FOLDERS = {"infrared": "ir", "visible": "rgb"}
SPLIT_FOLDERS = {"train": "Train", "test": "Test"}
LAYOUTS = ("split", "flat")
FORMAT = "synthvvi-1"  # the layout of synthvvi.json (unchanged in v2)
# What the generator renders: 1 = thermal infrared, plain walls, 12 frames; 2 = near-infrared by default,
# cluttered scenes, viewpoints, passers-by, 16-32 frames. Written into synthvvi.json and checkpoint sidecars.
SYNTHVVI_VERSION = 2
INFO_FILES = ("train_name.txt", "test_name.txt", "track_train_info.txt", "track_test_info.txt", "query_IDX.txt")


@dataclass(frozen=True)
class TrackletRecord:
    """One written tracklet, before it gets its row in the split's track file."""

    split: str  # train / test
    pid: int
    camid: int
    modality: str  # visible / infrared
    track: int  # T number (per pid, modality and camera)
    names: tuple[str, ...]  # frame names, as listed in <split>_name.txt
    caption: str
    attributes: dict  # per-tracklet facts (direction, occluder, exposure, frames, track)


def frame_name(pid: int, modality: str, camid: int, track: int, frame: int) -> str:
    """HITSZ-VCM frame name, e.g. ``0001M1D3T1F25.jpg``."""
    if not 0 <= pid <= 9999:
        raise LSMRLError(f"person id {pid} does not fit the 4-digit HITSZ-VCM name; use at most 9999 identities")
    return f"{pid:04d}M{MODALITY_CODES[modality]}D{camid}T{track}F{frame}.jpg"


def frame_relpath(name: str) -> str:
    """The path MITML's decoder builds from a frame name (relative to the split folder)."""
    pid = name[0:4]
    modality = "ir" if name[5] == "1" else "rgb"
    camera = name[name.find("D") : name.find("T")]
    picture = name[name.find("F") + 1 :]
    return f"{pid}/{modality}/{camera}/{picture}"


def split_root(root: Path, split: str, layout: str) -> Path:
    return root / SPLIT_FOLDERS[split] if layout == "split" else root


def write_jpeg(path: Path, frame: np.ndarray, quality: int) -> None:
    """Write an RGB uint8 frame as a baseline JPEG without metadata (byte-identical for the same input)."""
    Image.fromarray(frame).save(path, format="JPEG", quality=quality, optimize=True)


def prepare_output(root: Path, overwrite: bool) -> None:
    """Create ``root``; refuse to mix with an existing non-empty folder unless ``overwrite``.

    ``overwrite`` removes only what the generator writes: ``Train/``, ``Test/``,
    ``info/`` and 4-digit identity folders of the flat layout.
    """
    if root.exists() and not root.is_dir():
        raise LSMRLError(f"output path {root} exists and is not a folder; choose another --out")
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise LSMRLError(f"output folder {root} is not empty; pass --overwrite to replace a previous SynthVVI set")
        for child in root.iterdir():
            generated = child.name in ("Train", "Test", "info") or (len(child.name) == 4 and child.name.isdigit())
            if generated and child.is_dir():
                shutil.rmtree(child)
    (root / "info").mkdir(parents=True, exist_ok=True)


def _write_text(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8", newline="\n")


def write_info(root: Path, train: list[TrackletRecord], test: list[TrackletRecord]) -> dict[str, list[int]]:
    """Write the five index files; return the 1-based query rows per split (only test has queries)."""
    info = root / "info"
    queries: dict[str, list[int]] = {}
    for split, records in (("train", train), ("test", test)):
        names: list[str] = []
        tracks: list[str] = []
        query_rows: list[int] = []
        for row, record in enumerate(records, start=1):
            start = len(names) + 1
            names.extend(record.names)
            tracks.append(f"{MODALITY_CODES[record.modality]} {start} {len(names)} {record.pid} {record.camid}")
            if record.modality == "infrared":
                query_rows.append(row)
        _write_text(info / f"{split}_name.txt", names)
        _write_text(info / f"track_{split}_info.txt", tracks)
        queries[split] = query_rows
    _write_text(info / "query_IDX.txt", [" ".join(str(row) for row in queries["test"])] if queries["test"] else [])
    return {"test": queries["test"]}


def write_manifest(
    root: Path,
    seed: int,
    args: dict,
    cameras: dict,
    identities: dict,
    train: list[TrackletRecord],
    test: list[TrackletRecord],
) -> None:
    """``info/synthvvi.json``: everything the generator knows, keyed for readers and analysis."""

    def entries(records: list[TrackletRecord]) -> list[dict]:
        return [
            {
                "row": row,
                "pid": record.pid,
                "camid": record.camid,
                "modality": record.modality,
                "caption": record.caption,
                "attributes": record.attributes,
            }
            for row, record in enumerate(records)
        ]

    manifest = {
        "format": FORMAT,
        "synthvvi_version": SYNTHVVI_VERSION,
        "infrared": args.get("infrared", "nir"),
        "seed": seed,
        "args": args,
        "cameras": {str(camid): spec for camid, spec in cameras.items()},
        "identities": {str(pid): attrs for pid, attrs in identities.items()},
        "tracklets": {"train": entries(train), "test": entries(test)},
    }
    text = json.dumps(manifest, sort_keys=True, indent=1, ensure_ascii=True) + "\n"
    (root / "info" / "synthvvi.json").write_text(text, encoding="utf-8", newline="\n")
