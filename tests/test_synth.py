"""SynthVVI generator: determinism, HITSZ-VCM layout, infrared without colour, captions, the modality gap, CLI."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lsmrl.errors import LSMRLError
from lsmrl.synth import (
    COLOUR_WORDS,
    attribute_probes,
    generate_synthvvi,
    make_cameras,
    plan_tracklet,
    sample_identity,
    synthvvi_vocabulary,
    tokenize_caption,
)
from lsmrl.synth import cli as synth_cli
from lsmrl.synth.cameras import render_background
from lsmrl.synth.generate import identity_rng
from lsmrl.synth.render import render_infrared, render_visible

TINY = dict(train_identities=4, test_identities=10, frames=12, progress=False)


def _tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _mitml_path(root: Path, split: str, name: str) -> Path:
    """MITML's decoder_pic_path, restated: pid = [0:4], modality = [5], camera = D..T, file = after F."""
    modality = "ir" if name[5] == "1" else "rgb"
    camera = name[name.find("D") : name.find("T")]
    picture = name[name.find("F") + 1 :]
    return root / ("Train" if split == "train" else "Test") / name[0:4] / modality / camera / picture


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "seed0_w1"
    generate_synthvvi(root, seed=0, workers=1, **TINY)
    return root


def test_byte_identical_across_workers_and_seed_sensitive(tiny, tmp_path):
    generate_synthvvi(tmp_path / "w2", seed=0, workers=2, **TINY)
    reference = _tree_hashes(tiny)
    assert _tree_hashes(tmp_path / "w2") == reference
    generate_synthvvi(tmp_path / "seed1", seed=1, workers=2, **TINY)
    other = _tree_hashes(tmp_path / "seed1")
    changed = [path for path in reference if other.get(path) != reference[path]]
    assert len(changed) > 0.9 * len(reference)


def test_layout_matches_hitsz_vcm(tiny):
    info = tiny / "info"
    for name in ("train_name.txt", "test_name.txt", "track_train_info.txt", "track_test_info.txt", "query_IDX.txt"):
        assert (info / name).is_file()
    manifest = json.loads((info / "synthvvi.json").read_text())
    assert manifest["format"] == "synthvvi-1" and manifest["seed"] == 0
    assert sorted(int(pid) for pid in manifest["identities"]) == list(range(1, 15))

    listed = set()
    for split, pids, ids in (("train", range(1, 5), 4), ("test", range(5, 15), 10)):
        names = (info / f"{split}_name.txt").read_text().splitlines()
        rows = [list(map(int, line.split())) for line in (info / f"track_{split}_info.txt").read_text().splitlines()]
        assert len(rows) == ids * 4  # 2 visible + 2 infrared tracklets per identity
        assert sorted({row[3] for row in rows}) == list(pids)
        expected_start = 1
        for row, (modality, start, end, pid, camid) in enumerate(rows):
            assert start == expected_start and end - start + 1 == 12  # contiguous, 1-based, inclusive
            expected_start = end + 1
            for name in names[start - 1 : end]:
                assert name.startswith(f"{pid:04d}M{modality}D{camid}T") and name.endswith(".jpg")
                path = _mitml_path(tiny, split, name)
                assert path.is_file(), path
                listed.add(path)
            entry = manifest["tracklets"][split][row]
            assert entry["row"] == row and entry["pid"] == pid and entry["camid"] == camid
            assert entry["modality"] == {1: "infrared", 2: "visible"}[modality]
        assert expected_start == len(names) + 1
        for pid in pids:  # each identity: two distinct cameras per modality
            for modality in (1, 2):
                cams = [row[4] for row in rows if row[3] == pid and row[0] == modality]
                assert len(cams) == 2 and len(set(cams)) == 2

    on_disk = {path for path in tiny.rglob("*.jpg")}
    assert on_disk == listed  # no stray frames

    test_rows = [list(map(int, line.split())) for line in (info / "track_test_info.txt").read_text().splitlines()]
    query_lines = (info / "query_IDX.txt").read_text().splitlines()
    assert len(query_lines) == 1  # MITML keeps only the last line's integers
    queries = [int(v) for v in query_lines[0].split()]
    assert queries == [i + 1 for i, row in enumerate(test_rows) if row[0] == 1]  # all infrared rows, 1-based

    for path in list(on_disk)[:50]:
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.mode == "RGB" and image.size == (64, 128)
            assert not image.info.get("exif")


def test_infrared_frames_are_grey(tiny):
    for path in sorted((tiny / "Test").rglob("ir/*/*.jpg"))[:40]:
        frame = np.asarray(Image.open(path).convert("RGB"))
        assert (frame[..., 0] == frame[..., 1]).all() and (frame[..., 0] == frame[..., 2]).all()
    colourful = [np.asarray(Image.open(p).convert("HSV"))[..., 1].mean() for p in sorted((tiny / "Test").rglob("rgb/*/*.jpg"))[:40]]
    assert np.mean(colourful) > 20


def test_infrared_ignores_colours():
    cameras = make_cameras(0, 6)
    camera = cameras[2]
    background = render_background(camera, 0, 128, 64, 2)
    for pid in range(1, 6):
        attrs = sample_identity(identity_rng(0, pid, 0), pid)
        recoloured = dataclasses.replace(
            attrs,
            body=dataclasses.replace(attrs.body, skin_tone=(attrs.body.skin_tone + 2) % 5),
            hair=dataclasses.replace(attrs.hair, colour="blonde" if attrs.hair.colour != "blonde" else "black"),
            upper=dataclasses.replace(attrs.upper, colour="white" if attrs.upper.colour != "white" else "red",
                                      pattern_colour="green" if attrs.upper.pattern_colour != "green" else "blue"),
            lower=dataclasses.replace(attrs.lower, colour="yellow" if attrs.lower.colour != "yellow" else "purple"),
            shoes=dataclasses.replace(attrs.shoes, colour="white" if attrs.shoes.colour != "white" else "black"),
            accessories=dataclasses.replace(attrs.accessories, backpack_colour="orange", bag_colour="orange", hat_colour="orange"),
        )
        plan = plan_tracklet(np.random.default_rng(pid), attrs, camera, 6, 128, 64)
        assert plan == plan_tracklet(np.random.default_rng(pid), recoloured, camera, 6, 128, 64)
        ir_a = render_infrared(attrs, camera, background, plan, np.random.default_rng(7), 128, 64)
        ir_b = render_infrared(recoloured, camera, background, plan, np.random.default_rng(7), 128, 64)
        assert all(np.array_equal(a, b) for a, b in zip(ir_a, ir_b))
        vis_a = render_visible(attrs, camera, background, plan, np.random.default_rng(7), 128, 64)
        vis_b = render_visible(recoloured, camera, background, plan, np.random.default_rng(7), 128, 64)
        assert not all(np.array_equal(a, b) for a, b in zip(vis_a, vis_b))
        # thermal attributes do change the infrared image
        warmer = dataclasses.replace(attrs, thermal=dataclasses.replace(attrs.thermal, skin_temperature=attrs.thermal.skin_temperature + 2))
        ir_c = render_infrared(warmer, camera, background, plan, np.random.default_rng(7), 128, 64)
        assert not all(np.array_equal(a, c) for a, c in zip(ir_a, ir_c))


def test_captions_vocabulary_and_probes(tiny):
    manifest = json.loads((tiny / "info" / "synthvvi.json").read_text())
    vocabulary = synthvvi_vocabulary()
    assert len(vocabulary) == len(set(vocabulary)) and "," in vocabulary
    assert all(word == word.lower() for word in vocabulary)
    entries = manifest["tracklets"]["train"] + manifest["tracklets"]["test"]
    for entry in entries:
        tokens = tokenize_caption(entry["caption"])
        assert " ".join(tokens).replace(" ,", ",") == entry["caption"]  # words and commas only
        assert set(tokens) <= set(vocabulary), entry["caption"]
        colour_words = set(tokens) & COLOUR_WORDS
        if entry["modality"] == "infrared":
            assert not colour_words, entry["caption"]
        else:
            assert colour_words, entry["caption"]
    probes = attribute_probes()
    assert probes["backpack"] == ("a person with a backpack", "a person without a backpack")
    for key in ("red top", "striped top", "long sleeves", "thick top", "skirt"):
        assert key in probes
    for positive, negative in probes.values():
        assert set(tokenize_caption(positive)) | set(tokenize_caption(negative)) <= set(vocabulary)


def test_train_split_can_be_empty(tmp_path):
    summary = generate_synthvvi(tmp_path / "only_test", seed=3, train_identities=0, test_identities=3, progress=False, workers=1)
    info = tmp_path / "only_test" / "info"
    assert (info / "train_name.txt").read_text() == "" and (info / "track_train_info.txt").read_text() == ""
    assert summary["train"]["tracklets"] == 0 and summary["test"]["tracklets"] == 12
    assert not (tmp_path / "only_test" / "Train").exists()
    first_test = (info / "track_test_info.txt").read_text().split()[3]
    assert first_test == "1"  # test pids start after the (empty) train split
    with pytest.raises(LSMRLError, match="--overwrite"):
        generate_synthvvi(tmp_path / "only_test", seed=3, train_identities=0, test_identities=3, progress=False)


def test_cli_run_prints_time(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    synth_cli.add_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path / "cli"), "--seed", "5", "--train-identities", "1",
                              "--test-identities", "2", "--frames", "12", "--workers", "1", "--no-progress"])
    assert synth_cli.run(args) == 0
    out = capsys.readouterr().out
    assert "wall time" in out and "train: 1 identities, 4 tracklets, 48 frames" in out
    assert (tmp_path / "cli" / "info" / "synthvvi.json").is_file()


def test_cli_help():
    result = subprocess.run([sys.executable, "-m", "lsmrl", "synth", "--help"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert result.returncode == 0, result.stderr
    for flag in ("--out", "--seed", "--train-identities", "--test-identities", "--frames", "--workers"):
        assert flag in result.stdout


def test_flat_layout_matches_unmodified_mitml(tmp_path):
    root = tmp_path / "flat"
    generate_synthvvi(root, seed=2, train_identities=1, test_identities=1, layout="flat", progress=False, workers=1)
    assert not (root / "Train").exists() and not (root / "Test").exists()
    for split in ("train", "test"):
        for name in (root / "info" / f"{split}_name.txt").read_text().splitlines():
            # MITML: osp.join(root, decoder_pic_path(name)) with no Train/Test level
            relative = f"{name[0:4]}/{'ir' if name[5] == '1' else 'rgb'}/{name[name.find('D'):name.find('T')]}/{name[name.find('F') + 1:]}"
            assert (root / relative).is_file()
