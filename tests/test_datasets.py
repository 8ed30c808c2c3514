"""Readers of the official layouts (HITSZ-VCM, BUPTCampus, SynthVVI) on miniature trees, and their errors."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lsmrl.data import (
    INFRARED,
    INFRARED_TO_VISIBLE,
    VISIBLE,
    VISIBLE_TO_INFRARED,
    build_dataset,
    dataset_statistics,
    load_tracklet,
)
from lsmrl.data import cli as data_cli
from lsmrl.data.datasets import buptcampus as bupt_module
from lsmrl.errors import ConfigError, DatasetLayoutError


def _jpeg(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 4, 3), value % 256, dtype=np.uint8)).save(path, quality=95)


# --------------------------------------------------------------------------- HITSZ-VCM tree
# (modality 1=IR/2=RGB, pid, camid, length); a length < 12 must be dropped.
VCM_TRAIN = [(1, 1, 1, 12), (2, 1, 2, 15), (1, 2, 1, 5), (1, 2, 3, 12), (2, 2, 2, 12)]
VCM_TEST = [(1, 3, 1, 12), (2, 3, 2, 13), (1, 4, 3, 14), (2, 4, 4, 12), (1, 4, 1, 8), (2, 3, 1, 12)]
VCM_QUERY_IDX = [1, 3, 5]  # 1-based rows: the infrared test tracklets


def make_vcm_tree(root: Path, split_level: bool = True, info_in_root: bool = False) -> dict:
    """Write a HITSZ-VCM tree; return the expected frame paths per split and row."""
    info = root if info_in_root else root / "info"
    info.mkdir(parents=True, exist_ok=True)
    expected: dict[str, list[list[str]]] = {}
    for split, rows in (("train", VCM_TRAIN), ("test", VCM_TEST)):
        frame_root = root / split.capitalize() if split_level else root
        names, track_lines, paths_per_row = [], [], []
        counters: dict[tuple, int] = {}
        for track_no, (m, pid, cam, length) in enumerate(rows, start=1):
            start = len(names) + 1
            paths = []
            for _ in range(length):
                key = (pid, m, cam)
                counters[key] = counters.get(key, 0) + 1
                frame_no = counters[key]  # frames of one pid/modality/camera folder are numbered across tracks
                names.append(f"{pid:04d}M{m}D{cam}T{track_no}F{frame_no}.jpg")
                path = frame_root / f"{pid:04d}" / ("ir" if m == 1 else "rgb") / f"D{cam}" / f"{frame_no}.jpg"
                _jpeg(path, 10 * len(paths))
                paths.append(str(path))
            track_lines.append(f"{m} {start} {len(names)} {pid} {cam}")
            paths_per_row.append(paths)
        (info / f"{split}_name.txt").write_text("\n".join(names) + "\n")
        (info / f"track_{split}_info.txt").write_text("\n".join(track_lines) + "\n")
        expected[split] = paths_per_row
    (info / "query_IDX.txt").write_text(" ".join(map(str, VCM_QUERY_IDX)) + "\n")
    return expected


@pytest.fixture(scope="module")
def vcm_root(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("vcm") / "HITSZ-VCM"
    return root, make_vcm_tree(root)


def _copy(tree: Path, tmp_path: Path) -> Path:
    target = tmp_path / tree.name
    shutil.copytree(tree, target)
    return target


@pytest.mark.parametrize("split_level,info_in_root", [(True, False), (False, False), (False, True)])
def test_hitsz_vcm_reads_official_layout(tmp_path, split_level, info_in_root):
    root = tmp_path / "vcm"
    expected = make_vcm_tree(root, split_level=split_level, info_in_root=info_in_root)
    ds = build_dataset("hitsz-vcm", root)

    # tracklets shorter than 12 frames are dropped (train row 2, test row 4)
    assert len(ds.train) == 4 and len(ds.test) == 5
    assert [t.tid for t in ds.train] == ["train/00000", "train/00001", "train/00003", "train/00004"]
    assert [t.pid for t in ds.train] == [1, 1, 2, 2]
    assert [t.camid for t in ds.train] == [1, 2, 3, 2]
    assert [t.modality for t in ds.train] == [INFRARED, VISIBLE, INFRARED, VISIBLE]
    assert [t.pid for t in ds.test] == [3, 3, 4, 4, 3]
    assert [t.camid for t in ds.test] == [1, 2, 3, 4, 1]
    # frames in the order of the name list, at <split>/<pid>/<ir|rgb>/D<cam>/<n>.jpg
    assert list(ds.train[1].frames) == expected["train"][1]
    assert list(ds.test[4].frames) == expected["test"][5]
    assert all(os.path.exists(p) for t in ds.train + ds.test for p in t.frames)
    if split_level:
        assert f"{os.sep}Train{os.sep}0001{os.sep}ir{os.sep}D1{os.sep}1.jpg" in ds.train[0].frames[0]
    else:
        assert ds.test[0].frames[0] == str(root / "0003" / "ir" / "D1" / "1.jpg")

    # directions: IR->VIS queries are the query_IDX rows (row 4 dropped), VIS->IR is swapped
    query, gallery = ds.directions[INFRARED_TO_VISIBLE]
    assert query.tolist() == [0, 2] and gallery.tolist() == [1, 3, 4]
    assert all(ds.test[i].modality == INFRARED for i in query)
    assert all(ds.test[i].modality == VISIBLE for i in gallery)
    q2, g2 = ds.directions[VISIBLE_TO_INFRARED]
    assert q2.tolist() == gallery.tolist() and g2.tolist() == query.tolist()
    assert ds.camera_filter is True and ds.test_sampling == "evenly" and ds.test_num_frames == 6
    assert any("dropped 1 train and 1 test" in note for note in ds.notes)


def test_hitsz_vcm_min_length_option_and_frames_load(vcm_root):
    root, _ = vcm_root
    ds = build_dataset("hitsz_vcm", root, min_length=1, check_files=False)
    assert len(ds.train) == 5 and len(ds.test) == 6
    assert ds.directions[INFRARED_TO_VISIBLE][0].tolist() == [0, 2, 4]
    # frame i of every tracklet was written with value 10*i: 'evenly' on 14 frames picks 0,3,6,9,12,13
    frames = load_tracklet(ds.test[2], 6, "evenly")
    assert frames.shape == (6, 8, 4, 3) and frames.dtype == np.uint8
    assert np.allclose(frames[:, 4, 2, 0], [0, 30, 60, 90, 120, 130], atol=3)


def test_statistics_table_and_cli(vcm_root, capsys):
    root, _ = vcm_root
    table = dataset_statistics(build_dataset("hitsz-vcm", root))
    assert "train  infrared" in table and "infrared_to_visible" in table and "camera filter on" in table
    lines = {line.split()[0] + " " + line.split()[1]: line.split() for line in table.splitlines() if line.startswith(("train", "test"))}
    assert lines["train all"][2:4] == ["2", "4"]  # 2 ids, 4 tracklets
    assert lines["test infrared"][2:5] == ["2", "2", "12/13.0/14"]
    direction = next(line.split() for line in table.splitlines() if line.startswith("visible_to_infrared"))
    assert direction[1:] == ["3", "2", "2", "2"]

    parser = argparse.ArgumentParser()
    data_cli.add_arguments(parser)
    assert data_cli.run(parser.parse_args(["--dataset", "hitsz-vcm", "--data-root", str(root)])) == 0
    assert "infrared_to_visible" in capsys.readouterr().out


def test_registry_errors(vcm_root, tmp_path):
    root, _ = vcm_root
    with pytest.raises(ConfigError, match="unknown data set 'market'"):
        build_dataset("market", root)
    with pytest.raises(ConfigError, match="no option 'truncate_to_official'"):
        build_dataset("hitsz-vcm", root, truncate_to_official=True)
    with pytest.raises(DatasetLayoutError, match="does not exist") as info:
        build_dataset("hitsz-vcm", tmp_path / "nowhere")
    assert "layout" in str(info.value)


def _assert_layout_error(error: DatasetLayoutError, *fragments: str, dataset: str = "hitsz-vcm") -> str:
    message = str(error)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in:\n{message}"
    assert "layout" in message and f"--dataset {dataset}" in message
    assert "|--" in message  # the layout tree
    return message


def test_hitsz_vcm_missing_info_file(vcm_root, tmp_path):
    root = _copy(vcm_root[0], tmp_path)
    (root / "info" / "query_IDX.txt").unlink()
    with pytest.raises(DatasetLayoutError) as info:
        build_dataset("hitsz-vcm", root)
    _assert_layout_error(info.value, str(root / "info" / "query_IDX.txt"), "missing file")


def test_hitsz_vcm_missing_frames(vcm_root, tmp_path):
    root = _copy(vcm_root[0], tmp_path)
    missing = root / "Test" / "0004" / "rgb" / "D4" / "3.jpg"
    missing.unlink()
    (root / "Test" / "0004" / "rgb" / "D4" / "4.jpg").unlink()
    with pytest.raises(DatasetLayoutError) as info:
        build_dataset("hitsz-vcm", root)
    _assert_layout_error(info.value, str(missing), "2 of", "missing", "test_name.txt")


def test_hitsz_vcm_empty_index(vcm_root, tmp_path):
    root = _copy(vcm_root[0], tmp_path)
    (root / "info" / "test_name.txt").write_text("")
    with pytest.raises(DatasetLayoutError) as info:
        build_dataset("hitsz-vcm", root)
    _assert_layout_error(info.value, str(root / "info" / "test_name.txt"), "is empty")


def test_hitsz_vcm_bad_rows(vcm_root, tmp_path):
    root = _copy(vcm_root[0], tmp_path)
    (root / "info" / "query_IDX.txt").write_text("1 2 3\n")  # row 2 is visible: the sets mix modalities
    with pytest.raises(DatasetLayoutError, match="mix modalities") as info:
        build_dataset("hitsz-vcm", root)
    _assert_layout_error(info.value)
    (root / "info" / "query_IDX.txt").write_text("1 3 99\n")
    with pytest.raises(DatasetLayoutError, match="row 99 is outside 1..6"):
        build_dataset("hitsz-vcm", root)
    (root / "info" / "query_IDX.txt").write_text("1 3 5\n")
    (root / "info" / "track_test_info.txt").write_text("1 1 12 3\n")
    with pytest.raises(DatasetLayoutError, match="line 1: expected 5 integers"):
        build_dataset("hitsz-vcm", root)


# --------------------------------------------------------------------------- SynthVVI
def _synth_json(ds_rows_train, ds_rows_test) -> dict:
    def entries(rows):
        return [
            {"row": i, "pid": pid, "camid": cam, "modality": INFRARED if m == 1 else VISIBLE,
             "caption": f"person {pid} in row {i}", "attributes": {"occluded": False}}
            for i, (m, pid, cam, _) in enumerate(rows)
        ]
    return {
        "format": "synthvvi-1",
        "seed": 0,
        "identities": {str(pid): {"upper_colour": "red", "backpack": pid % 2 == 0} for pid in (1, 2, 3, 4)},
        "tracklets": {"train": entries(ds_rows_train), "test": entries(ds_rows_test)},
    }


def test_synthvvi_captions_and_attributes(vcm_root, tmp_path):
    root = _copy(vcm_root[0], tmp_path)
    with pytest.raises(DatasetLayoutError) as info:
        build_dataset("synthvvi", root)
    _assert_layout_error(info.value, str(root / "info" / "synthvvi.json"), "python -m lsmrl synth", dataset="synthvvi")
    assert "synthvvi.json" in str(info.value).split("Expected layout:")[1]

    (root / "info" / "synthvvi.json").write_text(json.dumps(_synth_json(VCM_TRAIN, VCM_TEST)))
    ds = build_dataset("synthvvi", root)
    assert ds.name == "synthvvi" and len(ds.test) == 5
    assert ds.train[2].caption == "person 2 in row 3"  # train row 2 was dropped
    assert ds.test[4].caption == "person 3 in row 5"
    assert ds.attributes[4] == {"upper_colour": "red", "backpack": True}
    assert ds.directions[INFRARED_TO_VISIBLE][0].tolist() == [0, 2]
    assert "synthvvi-1" in ds.notes[0]

    # a test-only set (synth --train-identities 0) is fine for synthvvi; hitsz-vcm needs allow_empty_train
    for name in ("train_name.txt", "track_train_info.txt"):
        (root / "info" / name).write_text("")
    test_only = build_dataset("synthvvi", root)
    assert test_only.train == [] and len(test_only.test) == 5 and "test-only" in test_only.notes[1]
    with pytest.raises(DatasetLayoutError, match="train_name.txt is empty"):
        build_dataset("hitsz-vcm", root)
    assert build_dataset("hitsz-vcm", root, allow_empty_train=True).train == []

    broken = _synth_json(VCM_TRAIN, VCM_TEST)
    broken["tracklets"]["test"][1]["pid"] = 99
    (root / "info" / "synthvvi.json").write_text(json.dumps(broken))
    with pytest.raises(DatasetLayoutError, match="row 1 has pid=99"):
        build_dataset("synthvvi", root)


# --------------------------------------------------------------------------- BUPTCampus
BUPT_TRAIN = ["0001 RGB/IR LS3 1", "0002 RGB/IR G25 1"]
BUPT_AUX = ["0005 RGB/IR CQ1 1"]
BUPT_QUERY = ["0003 IR LS3 1", "0003 RGB G25 2", "0004 IR W4 1", "0004 RGB TSG1 2", "0003 RGB CQ1 4"]
BUPT_GALLERY = ["0003 RGB LS3 1", "0004 RGB TSG1 3", "0003 IR CQ1 3", "0004 RGB TSG2 4", "0004 IR W4 5"]


def make_bupt_tree(root: Path) -> dict:
    data_paths: dict = {}
    lines = BUPT_TRAIN + BUPT_AUX + BUPT_QUERY + BUPT_GALLERY
    for line in lines:
        pid, modality, camera, tid = line.split()
        for mod in modality.split("/"):
            frames = []
            for frame in range(1, 6 + int(tid)):
                relative = f"{pid}/{mod}/{camera}/{pid}_{mod}_{camera}_{tid}_{frame}.jpg"
                _jpeg(root / "DATA" / relative, frame)
                frames.append(relative)
            data_paths.setdefault(pid, {}).setdefault(mod, {}).setdefault(camera, {})[tid] = frames
    (root / "data_paths.json").write_text(json.dumps(data_paths))
    for name, content in (("train.txt", BUPT_TRAIN), ("train_auxiliary.txt", BUPT_AUX),
                          ("query.txt", BUPT_QUERY), ("gallery.txt", BUPT_GALLERY)):
        (root / name).write_text("\n".join(content) + "\n")
    return data_paths


@pytest.fixture(scope="module")
def bupt_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bupt") / "BUPTCampus"
    make_bupt_tree(root)
    return root


def test_buptcampus_reads_official_layout(bupt_root):
    ds = build_dataset("buptcampus", bupt_root)
    # an RGB/IR train line is an aligned pair: one visible and one infrared tracklet
    assert [(t.pid, t.modality, t.camid) for t in ds.train] == [
        (1, VISIBLE, 0), (1, INFRARED, 0), (2, VISIBLE, 1), (2, INFRARED, 1)]
    assert len(ds.test) == 10 and ds.camera_filter is False
    assert ds.test_sampling == "uniform" and ds.test_num_frames == 10 and ds.metric == "euclidean"
    assert ds.test[0].frames[0] == str(bupt_root / "DATA" / "0003" / "IR" / "LS3" / "0003_IR_LS3_1_1.jpg")
    assert [Path(p).name for p in ds.test[1].frames] == [f"0003_RGB_G25_2_{i}.jpg" for i in range(1, 8)]
    assert [t.camid for t in ds.test[:5]] == [0, 1, 3, 4, 2]
    query, gallery = ds.directions[INFRARED_TO_VISIBLE]
    assert query.tolist() == [0, 2] and gallery.tolist() == [5, 6, 8]
    query, gallery = ds.directions[VISIBLE_TO_INFRARED]
    assert query.tolist() == [1, 3, 4] and gallery.tolist() == [7, 9]
    assert any("truncate_to_official=True" in note for note in ds.notes)

    # the DATA folder itself (the official --data_root) works too; auxiliary set on request
    ds_aux = build_dataset("buptcampus", bupt_root / "DATA", include_auxiliary=True)
    assert ds_aux.root == bupt_root and len(ds_aux.train) == 6 and ds_aux.train[-1].pid == 5


def test_buptcampus_truncate_to_official(bupt_root, monkeypatch):
    monkeypatch.setattr(bupt_module, "OFFICIAL_TEST_BATCH", 2)  # 64 in the release; 2 fits this tiny tree
    ds = build_dataset("buptcampus", bupt_root, truncate_to_official=True)
    # the last RGB line of each file is dropped (3 RGB lines -> 2)
    assert [t.tid for t in ds.test] == [
        "query/0003_IR_LS3_1", "query/0003_RGB_G25_2", "query/0004_IR_W4_1", "query/0004_RGB_TSG1_2",
        "gallery/0003_RGB_LS3_1", "gallery/0004_RGB_TSG1_3", "gallery/0003_IR_CQ1_3", "gallery/0004_IR_W4_5"]
    assert ds.directions[VISIBLE_TO_INFRARED][0].tolist() == [1, 3]
    assert any("dropped the last 1 RGB query and 1 RGB gallery" in note for note in ds.notes)
    table = dataset_statistics(ds)
    assert "camera filter off" in table and "distance euclidean" in table and "dropped the last 1 RGB query" in table


def test_buptcampus_errors(bupt_root, tmp_path):
    root = _copy(bupt_root, tmp_path)
    (root / "data_paths.json").rename(root / "paths.bak")
    with pytest.raises(DatasetLayoutError) as info:
        build_dataset("buptcampus", root)
    _assert_layout_error(info.value, str(root / "data_paths.json"), dataset="buptcampus")
    (root / "paths.bak").rename(root / "data_paths.json")

    (root / "query.txt").write_text("")
    with pytest.raises(DatasetLayoutError) as info:
        build_dataset("buptcampus", root)
    _assert_layout_error(info.value, str(root / "query.txt"), "is empty", dataset="buptcampus")

    (root / "query.txt").write_text("\n".join(BUPT_QUERY + ["0009 IR LS3 1"]) + "\n")
    with pytest.raises(DatasetLayoutError, match="line 6: 0009 IR LS3 1 is not in"):
        build_dataset("buptcampus", root)

    (root / "query.txt").write_text("\n".join(BUPT_QUERY) + "\n")
    missing = root / "DATA" / "0004" / "RGB" / "TSG2" / "0004_RGB_TSG2_4_2.jpg"
    missing.unlink()
    with pytest.raises(DatasetLayoutError) as info:
        build_dataset("buptcampus", root)
    _assert_layout_error(info.value, str(missing), "1 of", "gallery.txt line 4", dataset="buptcampus")


def test_synthvvi_generator_output_reads_back(tmp_path):
    """The real generator's output (both layouts) through the reader: captions, attributes, directions."""
    generate = pytest.importorskip("lsmrl.synth.generate")
    for layout in ("split", "flat"):
        out = tmp_path / layout
        generate.generate_synthvvi(out=out, seed=1, train_identities=2, test_identities=2, height=32, width=16,
                                   layout=layout, workers=1, progress=False)
        ds = build_dataset("synthvvi", out)
        assert {t.pid for t in ds.train} == {1, 2} and {t.pid for t in ds.test} == {3, 4}
        assert all(t.caption for t in ds.train + ds.test)
        assert set(ds.attributes) == {1, 2, 3, 4}
        query, gallery = ds.directions[INFRARED_TO_VISIBLE]
        assert all(ds.test[i].modality == INFRARED for i in query)
        assert all(ds.test[i].modality == VISIBLE for i in gallery)
        assert load_tracklet(ds.test[int(query[0])], 6, "evenly").shape == (6, 32, 16, 3)
