"""Reader for the official HITSZ-VCM release (Lin et al., "Learning Modal-Invariant and
Temporal-Memory for Video-based Visible-Infrared Person Re-Identification", CVPR 2022).

Layout (as read by MITML's ``data_manager.py`` and VLD's ``vcm_data_manager.py``)::

    <root>/info/train_name.txt        one frame name a line, e.g. 0001M1D1T1F1.jpg
    <root>/info/track_train_info.txt  one tracklet a line: "modality start end pid camid"
    <root>/info/test_name.txt
    <root>/info/track_test_info.txt
    <root>/info/query_IDX.txt         1-based rows of track_test_info.txt used as queries
    <root>/Train/<pid>/{ir,rgb}/D<cam>/<frame>   (VLD; MITML has no Train/Test level)
    <root>/Test/<pid>/{ir,rgb}/D<cam>/<frame>

Both variants are accepted: the info files in ``<root>/info/`` or in ``<root>``,
and the frame folders under ``Train/``/``Test/`` or directly in ``<root>``.

Rules, as in MITML:

- A frame name ``PPPPMmDcTtFf.jpg`` is person ``PPPP``, modality ``m`` (1 =
  infrared -> ``ir``, 2 = visible -> ``rgb``), camera folder ``Dc`` (the text
  between the first ``D`` and the first ``T``), frame file ``f.jpg`` (everything
  after the first ``F``): path ``PPPP/<ir|rgb>/Dc/f.jpg``.
- A tracklet row ``m start end pid camid`` takes the names ``start..end``
  (1-based, inclusive) of the split's name list; its modality is the row's ``m``.
- Tracklets with fewer than ``min_length`` (12) frames are dropped, in train and
  test alike. Pids are kept as in the files (not relabelled).
- Infrared to visible: query = the ``query_IDX`` rows (in file order), gallery =
  every other test row. Visible to infrared: the same two sets swapped (MITML's
  ``query_1``/``gallery_1``). The reader checks that the two sets cover the test
  rows exactly once and that each holds a single modality.
- MITML's ``_get_query_idx`` keeps only the integers of the *last* line of
  ``query_IDX.txt``; this reader reads every integer of every line (identical
  when the file is a single line, as in the release).

With the release this gives: train 500 identities, 9,751 tracklets; test 4,584
infrared queries and 5,099 visible gallery tracklets. Protocol: gallery items
with the query's identity and camera are removed (``camera_filter=True``); test
sampling is ``evenly`` with 6 frames.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from lsmrl.data.datasets._common import FrameChecker, check_root, layout_error, read_lines
from lsmrl.data.registry import register_dataset
from lsmrl.data.tracklet import INFRARED, INFRARED_TO_VISIBLE, VISIBLE, VISIBLE_TO_INFRARED, Tracklet, VVIDataset

NAME = "hitsz-vcm"
INFO_FILES = ("train_name.txt", "track_train_info.txt", "test_name.txt", "track_test_info.txt", "query_IDX.txt")
MIN_LENGTH = 12
TEST_NUM_FRAMES = 6

VCM_TREE = """\
<root>/
|-- info/                       (or these five files directly in <root>)
|   |-- train_name.txt          one frame name a line, e.g. 0001M1D1T1F1.jpg
|   |-- track_train_info.txt    one tracklet a line: modality start end pid camid
|   |-- test_name.txt
|   |-- track_test_info.txt
|   `-- query_IDX.txt           1-based test rows that are the (infrared) queries
|-- Train/                      (optional level: pid folders may sit in <root>)
|   `-- 0001/ir/D1/1.jpg        <pid>/{ir,rgb}/D<cam>/<frame> from name 0001M1D1T1F1.jpg
`-- Test/
    `-- 0002/rgb/D3/1.jpg
"""

_NAME_RE = re.compile(r"^(?P<pid>\d+)M(?P<mod>\d)(?P<cam>D\d+)T(?P<track>\d+)F(?P<frame>.+)$")
_MODALITY_CODE = {1: INFRARED, 2: VISIBLE}
_MODALITY_DIR = {"1": "ir", "2": "rgb"}


def _find_info_file(root: Path, name: str, dataset: str, tree: str, hint: str) -> Path:
    preferred, fallback = root / "info" / name, root / name
    if preferred.is_file():
        return preferred
    if fallback.is_file():
        return fallback
    raise layout_error(f"missing file: {preferred} (also looked for {fallback})", dataset, tree, hint)


def _split_dir(root: Path, level: str) -> Path:
    for candidate in (level, level.lower()):
        if (root / candidate).is_dir():
            return root / candidate
    return root


def _parse_tracks(path: Path, dataset: str, tree: str) -> np.ndarray:
    rows = []
    for number, line in enumerate(read_lines(path, dataset, tree), start=1):
        fields = line.replace(",", " ").split()
        try:
            values = [int(v) for v in fields]
        except ValueError:
            values = []
        if len(values) != 5:
            raise layout_error(
                f"{path} line {number}: expected 5 integers 'modality start end pid camid', got {line!r}",
                dataset,
                tree,
            )
        rows.append(values)
    return np.asarray(rows, dtype=np.int64)


def _parse_query_idx(path: Path, num_rows: int, dataset: str, tree: str) -> list[int]:
    values: list[int] = []
    for number, line in enumerate(read_lines(path, dataset, tree), start=1):
        for field in line.replace(",", " ").split():
            try:
                values.append(int(field))
            except ValueError:
                raise layout_error(f"{path} line {number}: {field!r} is not an integer row number", dataset, tree) from None
    bad = [v for v in values if not 1 <= v <= num_rows]
    if bad:
        raise layout_error(
            f"{path}: row {bad[0]} is outside 1..{num_rows} (the rows of track_test_info.txt); "
            f"{len(bad)} such value(s)",
            dataset,
            tree,
        )
    if len(set(values)) != len(values):
        seen: set[int] = set()
        duplicate = next(v for v in values if v in seen or seen.add(v))
        raise layout_error(f"{path}: row {duplicate} is listed more than once", dataset, tree)
    return [v - 1 for v in values]


def _build_split(
    split: str,
    names: list[str],
    names_path: Path,
    tracks: np.ndarray,
    tracks_path: Path,
    frame_dir: Path,
    min_length: int,
    checker: FrameChecker | None,
    dataset: str,
    tree: str,
) -> tuple[list[Tracklet], list[int], int, int]:
    """Tracklets of one split, their 0-based rows, #dropped short ones, #name/row mismatches."""
    tracklets: list[Tracklet] = []
    rows: list[int] = []
    dropped = mismatches = 0
    parsed: dict[int, tuple[str, str, str, str]] = {}
    for row, (m, start, end, pid, camid) in enumerate(tracks.tolist()):
        if m not in _MODALITY_CODE:
            raise layout_error(
                f"{tracks_path} line {row + 1}: modality {m} is neither 1 (infrared) nor 2 (visible)", dataset, tree
            )
        if not 1 <= start <= end <= len(names):
            raise layout_error(
                f"{tracks_path} line {row + 1}: frames {start}..{end} are outside 1..{len(names)} "
                f"(the lines of {names_path.name})",
                dataset,
                tree,
            )
        if end - start + 1 < min_length:
            dropped += 1
            continue
        paths = []
        for index in range(start - 1, end):
            entry = parsed.get(index)
            if entry is None:
                match = _NAME_RE.match(names[index])
                if match is None or match["mod"] not in _MODALITY_DIR:
                    raise layout_error(
                        f"{names_path} line {index + 1}: {names[index]!r} is not a frame name like 0001M1D1T1F1.jpg",
                        dataset,
                        tree,
                    )
                entry = (match["pid"], match["mod"], match["cam"], match["frame"])
                parsed[index] = entry
            name_pid, name_mod, cam_dir, frame = entry
            paths.append(os.path.join(frame_dir, name_pid, _MODALITY_DIR[name_mod], cam_dir, frame))
        first_pid, first_mod = parsed[start - 1][0], parsed[start - 1][1]
        if int(first_pid) != pid or int(first_mod) != m:
            mismatches += 1
        if checker is not None:
            checker.check(paths, f"{names_path.name} lines {start}..{end}, {tracks_path.name} line {row + 1}")
        tracklets.append(
            Tracklet(
                pid=int(pid),
                camid=int(camid),
                modality=_MODALITY_CODE[m],
                frames=tuple(paths),
                tid=f"{split}/{row:05d}",
            )
        )
        rows.append(row)
    return tracklets, rows, dropped, mismatches


def read_vcm_layout(
    root: str | os.PathLike,
    *,
    min_length: int = MIN_LENGTH,
    check_files: bool = True,
    allow_empty_train: bool = False,
    dataset: str = NAME,
    tree: str = VCM_TREE,
    hint: str = "",
) -> tuple[VVIDataset, list[int], list[int]]:
    """Read a HITSZ-VCM-layout folder; also return the 0-based info-file rows of the kept train and test tracklets.

    ``allow_empty_train`` accepts a test-only copy whose two train index files
    are both empty (``train`` is then ``[]``). ``dataset``/``tree``/``hint`` only
    change the error messages (SynthVVI reuses this reader).
    """
    root_path = check_root(root, dataset, tree)
    info = {name: _find_info_file(root_path, name, dataset, tree, hint) for name in INFO_FILES}
    train_dir, test_dir = _split_dir(root_path, "Train"), _split_dir(root_path, "Test")

    train_only_blank = all(
        not info[name].read_bytes().strip() for name in ("train_name.txt", "track_train_info.txt")
    )
    test_only = allow_empty_train and train_only_blank
    if test_only:
        train_names, train_tracks = [], np.zeros((0, 5), dtype=np.int64)
    else:
        train_names = read_lines(info["train_name.txt"], dataset, tree, keep_blank=True)
        train_tracks = _parse_tracks(info["track_train_info.txt"], dataset, tree)
    test_names = read_lines(info["test_name.txt"], dataset, tree, keep_blank=True)
    test_tracks = _parse_tracks(info["track_test_info.txt"], dataset, tree)
    query_rows = _parse_query_idx(info["query_IDX.txt"], len(test_tracks), dataset, tree)

    checker = FrameChecker() if check_files else None
    train, train_rows, train_dropped, train_mismatch = _build_split(
        "train", train_names, info["train_name.txt"], train_tracks, info["track_train_info.txt"],
        train_dir, min_length, checker, dataset, tree,
    )
    test, test_rows, test_dropped, test_mismatch = _build_split(
        "test", test_names, info["test_name.txt"], test_tracks, info["track_test_info.txt"],
        test_dir, min_length, checker, dataset, tree,
    )
    if checker is not None:
        checker.raise_if_missing(dataset, tree, hint)
    if not train and not test_only:
        raise layout_error(
            f"no training tracklet has at least {min_length} frames in {info['track_train_info.txt']}", dataset, tree
        )
    if not test:
        raise layout_error(
            f"no test tracklet has at least {min_length} frames in {info['track_test_info.txt']}", dataset, tree
        )

    # Directions: query_IDX rows vs the other rows (MITML), restricted to the kept tracklets.
    position = {row: i for i, row in enumerate(test_rows)}
    query_set = set(query_rows)
    query = np.asarray([position[r] for r in query_rows if r in position], dtype=np.int64)
    gallery = np.asarray([i for i, r in enumerate(test_rows) if r not in query_set], dtype=np.int64)
    if len(set(query.tolist()) | set(gallery.tolist())) != len(test) or len(query) + len(gallery) != len(test):
        raise layout_error("query_IDX.txt and the other test rows do not split the test set exactly once", dataset, tree)
    if len(query) == 0 or len(gallery) == 0:
        raise layout_error(
            f"{info['query_IDX.txt']} leaves {'no query' if len(query) == 0 else 'no gallery'} tracklet "
            f"among the {len(test)} test tracklets with at least {min_length} frames",
            dataset,
            tree,
        )
    for label, indices in (("query_IDX rows", query), ("other test rows", gallery)):
        modalities = {test[i].modality for i in indices}
        if len(modalities) != 1:
            counts = {m: sum(test[i].modality == m for i in indices) for m in sorted(modalities)}
            raise layout_error(
                f"the {label} mix modalities ({counts}); HITSZ-VCM's query_IDX.txt must list exactly the "
                f"infrared test tracklets so that each direction compares one modality with the other "
                f"({info['query_IDX.txt']})",
                dataset,
                tree,
            )
    query_modality = test[int(query[0])].modality
    gallery_modality = test[int(gallery[0])].modality
    if query_modality == gallery_modality:
        raise layout_error(
            f"the query_IDX rows and the other test rows are all {query_modality}: no cross-modal direction",
            dataset,
            tree,
        )
    ir_set, vis_set = (query, gallery) if query_modality == INFRARED else (gallery, query)
    directions = {INFRARED_TO_VISIBLE: (ir_set, vis_set), VISIBLE_TO_INFRARED: (vis_set, ir_set)}

    notes = [
        f"HITSZ-VCM protocol: min length {min_length} frames "
        f"(dropped {train_dropped} train and {test_dropped} test tracklets)",
        f"query_IDX.txt lists the {query_modality} test rows: infrared_to_visible uses them as queries, "
        "visible_to_infrared as gallery (MITML's swapped sets, one distance matrix transposed)",
        "camera filter: gallery items with the query's identity and camera are removed",
        f"frames under {'Train/ and Test/' if test_dir != root_path else '<root> (no Train/Test level)'}, "
        f"info files in {info['query_IDX.txt'].parent}",
    ]
    if test_only:
        notes.insert(0, "test-only copy: the train index files are empty (no training tracklets)")
    if query_modality != INFRARED:
        notes.append("query_IDX.txt lists visible rows here (the release lists infrared ones): directions follow modality")
    if train_mismatch or test_mismatch:
        notes.append(
            f"{train_mismatch + test_mismatch} tracklet(s) whose first frame name disagrees with the row's "
            "pid or modality (row values used, as MITML)"
        )
    dataset_obj = VVIDataset(
        name=dataset,
        root=root_path,
        train=train,
        test=test,
        directions=directions,
        camera_filter=True,
        test_sampling="evenly",
        test_num_frames=TEST_NUM_FRAMES,
        notes=notes,
    )
    return dataset_obj, train_rows, test_rows


@register_dataset(NAME)
def read_hitsz_vcm(
    root: str | os.PathLike,
    *,
    min_length: int = MIN_LENGTH,
    check_files: bool = True,
    allow_empty_train: bool = False,
) -> VVIDataset:
    """Read the official HITSZ-VCM release at ``root`` (see the module docstring for layout and protocol).

    ``allow_empty_train=True`` accepts a test-only copy (both train index files empty).
    """
    dataset, _, _ = read_vcm_layout(
        root, min_length=min_length, check_files=check_files, allow_empty_train=allow_empty_train
    )
    return dataset
