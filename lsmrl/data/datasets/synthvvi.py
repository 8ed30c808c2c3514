"""Reader for SynthVVI, the procedural data set of ``python -m lsmrl synth`` (design.md §3).

SynthVVI is written in the HITSZ-VCM layout, so the HITSZ-VCM reader reads its
tracklets and protocol (min length, query_IDX directions, camera filter,
``evenly`` x 6 test sampling). On top, ``info/synthvvi.json`` holds::

    {"format": "synthvvi-1", ...,
     "identities": {"<pid>": {attribute: value, ...}},
     "tracklets": {"train": [{"row": i, "pid": p, "camid": c, "modality": "visible"|"infrared",
                              "caption": "...", "attributes": {...}}, ...],
                   "test": [...]}}

where ``row`` is the 0-based row of ``track_<split>_info.txt``. The reader
attaches each tracklet's caption (``Tracklet.caption``) and the per-identity
attributes (``VVIDataset.attributes``, keyed by int pid) and checks that the
json and the info files agree on pid, camera and modality.
:func:`read_synthvvi_json` returns the whole file (with per-tracklet attributes).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from lsmrl.data.datasets._common import check_root, layout_error
from lsmrl.data.datasets.hitsz_vcm import MIN_LENGTH, VCM_TREE, read_vcm_layout
from lsmrl.data.registry import register_dataset
from lsmrl.data.tracklet import MODALITIES, VVIDataset

NAME = "synthvvi"
FORMAT = "synthvvi-1"
JSON_NAME = "synthvvi.json"

SYNTH_TREE = VCM_TREE.replace(
    "|   `-- query_IDX.txt           1-based test rows that are the (infrared) queries\n",
    "|   |-- query_IDX.txt           1-based test rows that are the (infrared) queries\n"
    "|   `-- synthvvi.json           captions and attributes (format synthvvi-1)\n",
)
_HINT = "Generate SynthVVI with `python -m lsmrl synth --out <root>`; a real HITSZ-VCM folder is read with --dataset hitsz-vcm."


def _json_path(root: Path) -> Path:
    for candidate in (root / "info" / JSON_NAME, root / JSON_NAME):
        if candidate.is_file():
            return candidate
    raise layout_error(
        f"missing file: {root / 'info' / JSON_NAME} (also looked for {root / JSON_NAME}): "
        "without it this folder is a plain HITSZ-VCM-layout data set with no captions or attributes",
        NAME,
        SYNTH_TREE,
        _HINT,
    )


def read_synthvvi_json(root: str | os.PathLike) -> dict:
    """The parsed ``synthvvi.json`` of a SynthVVI root (checked for its format tag)."""
    root_path = check_root(root, NAME, SYNTH_TREE)
    path = _json_path(root_path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise layout_error(f"{path} is not valid JSON ({error})", NAME, SYNTH_TREE, _HINT) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise layout_error(f"{path}: format is {found!r}, expected {FORMAT!r}", NAME, SYNTH_TREE, _HINT)
    for key in ("identities", "tracklets"):
        if not isinstance(data.get(key), dict):
            raise layout_error(f"{path}: the key {key!r} is missing or not an object", NAME, SYNTH_TREE, _HINT)
    return data


def synthvvi_version(data: dict) -> int:
    """The generator version of a parsed ``synthvvi.json`` (files written before versions existed are 1)."""
    return int(data.get("synthvvi_version", 1))


@register_dataset(NAME)
def read_synthvvi(
    root: str | os.PathLike,
    *,
    min_length: int = MIN_LENGTH,
    check_files: bool = True,
    allow_empty_train: bool = True,
) -> VVIDataset:
    """Read a SynthVVI root: the HITSZ-VCM reader plus captions and attributes from ``info/synthvvi.json``.

    A test-only set (``python -m lsmrl synth --train-identities 0``, as embedded
    in ``assets/``) is accepted by default.
    """
    root_path = check_root(root, NAME, SYNTH_TREE)
    json_path = _json_path(root_path)  # fail on the json first: it is what makes the folder SynthVVI
    dataset, train_rows, test_rows = read_vcm_layout(
        root_path,
        min_length=min_length,
        check_files=check_files,
        allow_empty_train=allow_empty_train,
        dataset=NAME,
        tree=SYNTH_TREE,
        hint=_HINT,
    )
    data = read_synthvvi_json(root_path)

    for split, tracklets, rows in (("train", dataset.train, train_rows), ("test", dataset.test, test_rows)):
        position = {row: i for i, row in enumerate(rows)}
        entries = data["tracklets"].get(split, [])
        if not isinstance(entries, list):
            raise layout_error(f"{json_path}: tracklets.{split} is not a list", NAME, SYNTH_TREE, _HINT)
        for entry in entries:
            try:
                row = int(entry["row"])
            except (KeyError, TypeError, ValueError):
                raise layout_error(f"{json_path}: a tracklets.{split} entry has no integer 'row': {entry!r}"[:300],
                                   NAME, SYNTH_TREE, _HINT) from None
            index = position.get(row)
            if index is None:  # dropped by min_length
                continue
            tracklet = tracklets[index]
            if "modality" in entry and entry["modality"] not in MODALITIES:
                raise layout_error(f"{json_path}: tracklets.{split} row {row}: modality {entry['modality']!r} "
                                   f"is not one of {MODALITIES}", NAME, SYNTH_TREE, _HINT)
            expected = {"pid": tracklet.pid, "camid": tracklet.camid, "modality": tracklet.modality}
            for key, value in expected.items():
                found = entry.get(key, value)
                if key != "modality":
                    try:
                        found = int(found)
                    except (TypeError, ValueError):
                        pass
                if found != value:
                    raise layout_error(
                        f"{json_path}: tracklets.{split} row {row} has {key}={entry[key]!r} but "
                        f"track_{split}_info.txt line {row + 1} has {value!r}; the json and the info files "
                        "come from different generations",
                        NAME,
                        SYNTH_TREE,
                        _HINT,
                    )
            caption = entry.get("caption")
            if caption is not None:
                tracklets[index] = dataclasses.replace(tracklet, caption=str(caption))

    dataset.attributes = {int(pid): attrs for pid, attrs in data["identities"].items()}
    dataset.synthvvi_version = synthvvi_version(data)
    num_captioned = sum(t.caption is not None for t in dataset.train + dataset.test)
    extra = {k: v for k, v in data.items() if k not in ("format", "identities", "tracklets") and not isinstance(v, (dict, list))}
    dataset.notes.insert(
        0,
        f"SynthVVI ({FORMAT}{', ' + ', '.join(f'{k}={v}' for k, v in extra.items()) if extra else ''}): "
        f"{num_captioned} captioned tracklets, attributes of {len(dataset.attributes)} identities",
    )
    return dataset
