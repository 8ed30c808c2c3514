"""Reader for the official BUPTCampus release (Du et al., "Video-based Visible-Infrared
Person Re-Identification with Auxiliary Samples", TIFS 2024; github.com/dyhBUPT/BUPTCampus).

Layout (the README's tree; the official ``--data_root`` points at ``DATA/`` and
reads the other files from ``DATA/..``)::

    <root>/DATA/<pid>/{IR,RGB,FakeIR}/<cam>/<pid>_<MOD>_<cam>_<tid>_<frame>.jpg
    <root>/data_paths.json      {pid: {"IR"|"RGB"|"FakeIR": {camera: {tid: [frame paths]}}}}
    <root>/train.txt            "pid modality camera tid" a line; modality "RGB/IR" = an aligned pair
    <root>/train_auxiliary.txt  the single-camera auxiliary set, same format
    <root>/query.txt            modality "RGB" or "IR"
    <root>/gallery.txt

Rules, as in the official ``dataloader.py``/``test.py``/``sampler.py``:

- A line's frames are ``data_paths[pid][modality][camera][tid]``, in list order,
  each relative to ``DATA/`` (``join(data_root, path)``). Passing the ``DATA``
  folder itself as ``root`` also works.
- A train line ``RGB/IR`` is a pixel-aligned pair: it gives one visible and one
  infrared tracklet (the same ``tid``). The auxiliary set is added to the
  training tracklets only with ``include_auxiliary=True``.
- ``test`` is the query lines followed by the gallery lines. Infrared to visible
  = IR query lines vs RGB gallery lines; visible to infrared = RGB query lines vs
  IR gallery lines (the modality masks of ``test.py``).
- No camera filter; camera ids follow ``utils.CAMERA`` (LS3 0, G25 1, CQ1 2, W4 3,
  TSG1 4, TSG2 5); test sampling ``uniform`` with 10 frames.
- The official test sampler (``ConsistentModalitySampler`` with ``test_bs=64``)
  drops the last ``len(RGB) % 64`` RGB tracklets of query and gallery:
  1,076 -> 1,048 queries and 4,844 -> 4,790 gallery tracklets. Published
  numbers (the paper, VLD) use these truncated sets. ``truncate_to_official=True``
  reproduces the drop; the default keeps the full lists. (When the remainder is
  0, the official code's ``idx_rgb[:-0]`` would drop *all* RGB tracklets; this
  reader keeps them and says so.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from lsmrl.data.datasets._common import FrameChecker, check_root, layout_error, read_lines, require_file
from lsmrl.data.registry import register_dataset
from lsmrl.data.tracklet import INFRARED, INFRARED_TO_VISIBLE, VISIBLE, VISIBLE_TO_INFRARED, Tracklet, VVIDataset

NAME = "buptcampus"
CAMERAS = {"LS3": 0, "G25": 1, "CQ1": 2, "W4": 3, "TSG1": 4, "TSG2": 5}
MODALITY = {"RGB": VISIBLE, "IR": INFRARED}
OFFICIAL_TEST_BATCH = 64
TEST_NUM_FRAMES = 10

BUPT_TREE = """\
<root>/
|-- DATA/<pid>/{IR,RGB,FakeIR}/<cam>/<pid>_<MOD>_<cam>_<tid>_<frame>.jpg
|-- data_paths.json       {pid: {IR|RGB|FakeIR: {camera: {tid: [frame paths relative to DATA/]}}}}
|-- train.txt             one tracklet a line: pid modality camera tid (modality RGB/IR = aligned pair)
|-- train_auxiliary.txt   same format (read with include_auxiliary=True)
|-- query.txt             modality RGB or IR
`-- gallery.txt
cameras: LS3, G25, CQ1, W4, TSG1, TSG2
"""


def _resolve_root(root: str | os.PathLike) -> tuple[Path, Path]:
    """(dataset root holding data_paths.json, DATA folder)."""
    path = check_root(root, NAME, BUPT_TREE)
    if not (path / "data_paths.json").exists() and path.name == "DATA" and (path.parent / "data_paths.json").exists():
        path = path.parent  # the official --data_root points at DATA/
    return path, path / "DATA"


def _frame_path(data_dir: Path, root: Path, relative: str) -> str:
    if os.path.isabs(relative):
        return relative
    if relative.startswith(("DATA/", "DATA\\")):
        return os.path.join(root, relative)
    return os.path.join(data_dir, relative)


def _parse(path: Path, allowed: tuple[str, ...]) -> list[tuple[int, str, str, str, str]]:
    """Lines of an index file as (line number, pid, modality, camera, tid)."""
    entries = []
    text_lines = read_lines(path, NAME, BUPT_TREE, keep_blank=True)
    for number, line in enumerate(text_lines, start=1):
        if not line:
            continue
        fields = line.split()
        if len(fields) != 4:
            raise layout_error(f"{path} line {number}: expected 'pid modality camera tid', got {line!r}", NAME, BUPT_TREE)
        pid, modality, camera, tid = fields
        if modality not in allowed:
            raise layout_error(
                f"{path} line {number}: modality {modality!r} is not one of {', '.join(allowed)}", NAME, BUPT_TREE
            )
        try:
            int(pid)
        except ValueError:
            raise layout_error(f"{path} line {number}: pid {pid!r} is not a number", NAME, BUPT_TREE) from None
        entries.append((number, pid, modality, camera, tid))
    return entries


def _lookup(data_paths: dict, json_path: Path, index_path: Path, number: int, keys: tuple[str, ...]) -> list:
    node = data_paths
    for depth, key in enumerate(keys):
        if not isinstance(node, dict) or key not in node:
            where = "".join(f"[{k!r}]" for k in keys[:depth])
            raise layout_error(
                f"{index_path} line {number}: {' '.join(keys)} is not in {json_path} "
                f"(no key {key!r} in data_paths{where})",
                NAME,
                BUPT_TREE,
            )
        node = node[key]
    if not isinstance(node, list) or not node:
        raise layout_error(
            f"{index_path} line {number}: data_paths{''.join(f'[{k!r}]' for k in keys)} in {json_path} "
            "is not a non-empty list of frame paths",
            NAME,
            BUPT_TREE,
        )
    return node


@register_dataset(NAME)
def read_buptcampus(
    root: str | os.PathLike,
    *,
    include_auxiliary: bool = False,
    truncate_to_official: bool = False,
    check_files: bool = True,
) -> VVIDataset:
    """Read the official BUPTCampus release at ``root`` (see the module docstring for layout and protocol)."""
    root_path, data_dir = _resolve_root(root)
    json_path = require_file(root_path / "data_paths.json", NAME, BUPT_TREE)
    index_files = {"train": root_path / "train.txt", "query": root_path / "query.txt", "gallery": root_path / "gallery.txt"}
    if include_auxiliary:
        index_files["aux"] = root_path / "train_auxiliary.txt"
    for path in index_files.values():
        require_file(path, NAME, BUPT_TREE)
    if not data_dir.is_dir():
        raise layout_error(f"missing folder: {data_dir}", NAME, BUPT_TREE)
    try:
        data_paths = json.loads(json_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise layout_error(f"{json_path} is not valid JSON ({error})", NAME, BUPT_TREE) from None
    if not isinstance(data_paths, dict) or not data_paths:
        raise layout_error(f"{json_path} is empty (expected {{pid: {{modality: ...}}}})", NAME, BUPT_TREE)

    parsed = {
        split: _parse(path, ("RGB/IR", "RGB", "IR") if split in ("train", "aux") else ("RGB", "IR"))
        for split, path in index_files.items()
    }
    for split, entries in parsed.items():
        if not entries:
            raise layout_error(f"index file {index_files[split]} is empty", NAME, BUPT_TREE)

    cameras = dict(CAMERAS)
    extra = sorted({e[3] for entries in parsed.values() for e in entries} - set(cameras))
    for offset, camera in enumerate(extra):
        cameras[camera] = len(CAMERAS) + offset

    notes = ["official BUPTCampus protocol: no camera filter; test sampling uniform x 10 frames; euclidean distance"]
    if extra:
        notes.append(f"cameras not in the official list got ids {len(CAMERAS)}+: {', '.join(extra)}")

    # The official sampler's truncation of RGB test tracklets to a multiple of 64.
    dropped: dict[str, int] = {}
    for split in ("query", "gallery"):
        rgb_lines = [e[0] for e in parsed[split] if e[2] == "RGB"]
        remainder = len(rgb_lines) % OFFICIAL_TEST_BATCH
        dropped[split] = remainder
        if truncate_to_official and remainder:
            drop = set(rgb_lines[-remainder:])
            parsed[split] = [e for e in parsed[split] if e[0] not in drop]
        elif truncate_to_official and rgb_lines:
            notes.append(
                f"{split}.txt has a multiple of {OFFICIAL_TEST_BATCH} RGB lines: the official sampler's "
                "idx_rgb[:-0] would drop all of them; kept here"
            )
    if truncate_to_official:
        notes.append(
            f"truncate_to_official: dropped the last {dropped['query']} RGB query and {dropped['gallery']} RGB gallery "
            f"tracklets, as the official ConsistentModalitySampler (test_bs={OFFICIAL_TEST_BATCH}); "
            "these are the sets behind the published numbers"
        )
    else:
        notes.append(
            f"full query/gallery lists; the published numbers (paper, VLD) use the official sampler's sets, "
            f"which drop the last {dropped['query']} RGB query and {dropped['gallery']} RGB gallery tracklets "
            "(pass truncate_to_official=True to match them)"
        )

    checker = FrameChecker() if check_files else None

    def make(split: str, number: int, pid: str, modality: str, camera: str, tid: str) -> Tracklet:
        frames = _lookup(data_paths, json_path, index_files[split], number, (pid, modality, camera, tid))
        paths = tuple(_frame_path(data_dir, root_path, str(p)) for p in frames)
        if checker is not None:
            checker.check(paths, f"{json_path.name} via {index_files[split].name} line {number}")
        return Tracklet(
            pid=int(pid),
            camid=cameras[camera],
            modality=MODALITY[modality],
            frames=paths,
            tid=f"{split}/{pid}_{modality}_{camera}_{tid}",
        )

    train: list[Tracklet] = []
    for split in ("train", "aux") if include_auxiliary else ("train",):
        for number, pid, modality, camera, tid in parsed[split]:
            for single in ("RGB", "IR") if modality == "RGB/IR" else (modality,):
                train.append(make(split, number, pid, single, camera, tid))
    if include_auxiliary:
        notes.append(f"training set includes the auxiliary set ({len(parsed['aux'])} lines of train_auxiliary.txt)")

    test: list[Tracklet] = []
    part: list[str] = []
    for split in ("query", "gallery"):
        for number, pid, modality, camera, tid in parsed[split]:
            test.append(make(split, number, pid, modality, camera, tid))
            part.append(split)
    if checker is not None:
        checker.raise_if_missing(NAME, BUPT_TREE)

    def select(split: str, modality: str) -> np.ndarray:
        return np.asarray([i for i, t in enumerate(test) if part[i] == split and t.modality == modality], dtype=np.int64)

    directions = {
        INFRARED_TO_VISIBLE: (select("query", INFRARED), select("gallery", VISIBLE)),
        VISIBLE_TO_INFRARED: (select("query", VISIBLE), select("gallery", INFRARED)),
    }
    for direction, (query, gallery) in directions.items():
        if len(query) == 0 or len(gallery) == 0:
            query_mod, gallery_mod = ("IR", "RGB") if direction == INFRARED_TO_VISIBLE else ("RGB", "IR")
            missing = f"query.txt has no {query_mod} line" if len(query) == 0 else f"gallery.txt has no {gallery_mod} line"
            raise layout_error(f"{direction} cannot be evaluated: {missing}", NAME, BUPT_TREE)

    return VVIDataset(
        name=NAME,
        root=root_path,
        train=train,
        test=test,
        directions=directions,
        camera_filter=False,
        test_sampling="uniform",
        test_num_frames=TEST_NUM_FRAMES,
        metric="euclidean",  # opts.py: --distance euclidean
        notes=notes,
    )
