"""SynthVVI v2: near-infrared physics, nuisances, variable lengths, reproducibility and difficulty bounds."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from lsmrl.cli import main as cli_main
from lsmrl.synth import generate_synthvvi, make_cameras, plan_tracklet, sample_identity
from lsmrl.synth.bounds import bounds_table, check_targets, infrared_attributes
from lsmrl.synth.cameras import render_background
from lsmrl.synth.export import MANIFEST, export_test_split
from lsmrl.synth.figure import BACKPACK, UPPER, rasterize
from lsmrl.synth.gap_check import load_split
from lsmrl.synth.generate import identity_rng
from lsmrl.synth.identities import NIR_REFLECTANCE, PALETTE
from lsmrl.synth.render import render_nir
from lsmrl.synth.writer import SYNTHVVI_VERSION

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "assets" / "synthvvi"


def _luminance(rgb) -> float:
    r, g, b = rgb
    return 0.299 * r + 0.587 * g + 0.114 * b


def test_nir_grey_is_not_a_function_of_visible_luminance():
    names = list(PALETTE)
    lum = np.array([_luminance(PALETTE[n]) for n in names])
    nir = np.array([NIR_REFLECTANCE[n] for n in names])
    assert abs(np.corrcoef(lum, nir)[0, 1]) < 0.3
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    # different visible colours that collapse to one NIR grey (e.g. white, red and orange) ...
    collapse = [(a, b) for a, b in pairs if abs(NIR_REFLECTANCE[a] - NIR_REFLECTANCE[b]) < 0.03
                and abs(_luminance(PALETTE[a]) - _luminance(PALETTE[b])) > 60]
    # ... and similar visible luminances that separate (e.g. red and brown)
    separate = [(a, b) for a, b in pairs if abs(_luminance(PALETTE[a]) - _luminance(PALETTE[b])) < 10
                and abs(NIR_REFLECTANCE[a] - NIR_REFLECTANCE[b]) > 0.3]
    assert ("white", "red") in collapse and ("red", "brown") in separate


def _identity_with(pid: int, **changes):
    attrs = sample_identity(identity_rng(0, pid, 0), pid)
    return dataclasses.replace(attrs, **changes)


def test_nir_shows_stripes_and_backpacks_above_the_noise():
    """v1's thermal frames showed stripes at 3.3 grey levels against noise 3.5; NIR shows dye contrast."""
    camera = make_cameras(0, 6)[0]
    background = render_background(camera, 0, 128, 64, 1)
    base = sample_identity(identity_rng(0, 1, 0), 1)
    attrs = dataclasses.replace(
        base,
        upper=dataclasses.replace(base.upper, colour="green", pattern="stripes", pattern_colour="white", pattern_period=0.06),
        accessories=dataclasses.replace(base.accessories, backpack=True, backpack_colour="white"),
    )
    plan = plan_tracklet(np.random.default_rng(3), attrs, camera, 8, 128, 64)
    plan = dataclasses.replace(plan, occluder=None, passerby=None, motion_blur=0)
    frames = render_nir(attrs, camera, background, plan, np.random.default_rng(4), 128, 64, supersample=1)
    stripe_gaps, pack_gaps = [], []
    for t, (frame, pose) in enumerate(zip(frames, plan.poses)):
        labels, pattern = rasterize(attrs, pose, plan.direction, None, 128, 64, 1, view_angle=plan.view_angle)
        grey = frame[..., 0].astype(float)
        upper = (labels == UPPER)
        if (upper & pattern).sum() > 10 and (upper & ~pattern).sum() > 10:
            stripe_gaps.append(grey[upper & pattern].mean() - grey[upper & ~pattern].mean())
        pack = labels == BACKPACK
        if pack.sum() > 10:
            ring = ~pack & (labels == 0)
            pack_gaps.append(grey[pack].mean() - grey[ring].mean())
    assert stripe_gaps and np.mean(stripe_gaps) > 4 * camera.nir.noise  # white stripes on a green top
    assert pack_gaps and np.mean(pack_gaps) > 4 * camera.nir.noise


def test_nuisances_are_drawn_per_camera_and_tracklet():
    cameras = make_cameras(0, 6)
    assert len({round(c.view_angle) for c in cameras}) > 3 and max(c.view_angle for c in cameras) > 30
    attrs = sample_identity(identity_rng(0, 2, 0), 2)
    plans = [plan_tracklet(np.random.default_rng(s), attrs, cameras[s % 6], 24, 128, 64) for s in range(60)]
    assert 0.05 < np.mean([p.passerby is not None for p in plans]) < 0.6
    assert 0.15 < np.mean([p.motion_blur > 0 for p in plans]) < 0.6
    assert max(max(p.illumination) - min(p.illumination) for p in plans) > 0.2
    # a camera that looks along the path: the person grows or shrinks over the tracklet
    oblique = max(cameras, key=lambda c: c.view_angle)
    plan = plan_tracklet(np.random.default_rng(1), attrs, oblique, 32, 128, 64)
    first = np.mean([p.body_height for p in plan.poses[:4]])
    last = np.mean([p.body_height for p in plan.poses[-4:]])
    assert abs(last - first) / first > 0.04
    # the background is cluttered: many strong edges besides the person
    background = render_background(cameras[0], 0, 128, 64, 1)
    edges = np.abs(np.diff(background.visible.mean(axis=2), axis=1)) > 40
    assert edges.mean() > 0.005


@pytest.fixture(scope="module")
def small_v2(tmp_path_factory):
    root = tmp_path_factory.mktemp("v2") / "synthvvi"
    generate_synthvvi(root, seed=3, train_identities=2, test_identities=6, progress=False, workers=2)
    return root


def test_variable_lengths_version_and_infrared_mode(small_v2, tmp_path):
    manifest = json.loads((small_v2 / "info" / "synthvvi.json").read_text())
    assert manifest["synthvvi_version"] == SYNTHVVI_VERSION == 2 and manifest["infrared"] == "nir"
    tracks = [list(map(int, line.split())) for line in (small_v2 / "info" / "track_test_info.txt").read_text().splitlines()]
    lengths = [end - start + 1 for _, start, end, _, _ in tracks]
    assert min(lengths) >= 16 and max(lengths) <= 32 and len(set(lengths)) > 3
    # the mean length over many tracklets is about 24 (the draw itself, without rendering)
    draws = [int(identity_rng(0, pid, j).integers(16, 33)) for pid in range(1, 200) for j in range(1, 5)]
    assert 23 < np.mean(draws) < 25
    thermal = tmp_path / "thermal"
    generate_synthvvi(thermal, seed=3, train_identities=0, test_identities=1, infrared="thermal", progress=False, workers=1)
    assert json.loads((thermal / "info" / "synthvvi.json").read_text())["infrared"] == "thermal"


def test_test_only_rendering_is_byte_identical_to_a_full_run(small_v2, tmp_path):
    """The committed split is checked by rendering only the test identities: they must not depend on the rest."""
    only_test = tmp_path / "only_test"
    generate_synthvvi(only_test, seed=3, train_identities=2, test_identities=6, progress=False, workers=1, splits=("test",))
    export_test_split(small_v2, tmp_path / "export_full")
    export_test_split(only_test, tmp_path / "export_test_only")
    assert (tmp_path / "export_full" / MANIFEST).read_bytes() == (tmp_path / "export_test_only" / MANIFEST).read_bytes()


def test_oracle_reads_only_what_reaches_infrared():
    attrs = sample_identity(identity_rng(0, 5, 0), 5).to_dict()
    recoloured = json.loads(json.dumps(attrs))
    recoloured["upper"]["colour"] = {"white": "red", "red": "white"}.get(attrs["upper"]["colour"], attrs["upper"]["colour"])
    assert infrared_attributes(attrs, "nir") == infrared_attributes(recoloured, "nir") or attrs["upper"]["colour"] in ("white", "red")
    other = json.loads(json.dumps(attrs))
    other["upper"]["colour"] = "grey" if attrs["upper"]["colour"] != "grey" else "white"  # 0.2 vs others: a NIR change
    assert infrared_attributes(attrs, "nir") != infrared_attributes(other, "nir")
    assert not any(c in token for token in infrared_attributes(attrs, "nir") for c in PALETTE)


@pytest.mark.slow
def test_difficulty_targets_hold_on_a_fresh_draw(tmp_path):
    """Colour gives nothing across modalities, the identity information is there, one frame is not enough."""
    root = tmp_path / "fresh"
    generate_synthvvi(root, seed=21, train_identities=0, test_identities=60, progress=False, workers=2)
    table = bounds_table(load_split(root, "test"), json.loads((root / "info" / "synthvvi.json").read_text()))
    assert check_targets(table) == []
    assert table["attribute_oracle"]["infrared_to_visible"]["rank1"] >= 90.0
    # `python -m lsmrl bounds` writes the same table, with what it was computed on
    assert cli_main(["bounds", "--root", str(root), "--json", str(tmp_path / "bounds.json")]) == 0
    written = json.loads((tmp_path / "bounds.json").read_text())
    assert written.pop("meta") == {"root": "fresh", "split": "test", "synthvvi_version": SYNTHVVI_VERSION,
                                   "infrared": "nir", "tracklets": len(load_split(root, "test")),
                                   "targets_missed": []}
    assert written == json.loads(json.dumps(table, sort_keys=True))
    assert cli_main(["bounds", "--root", str(tmp_path)]) == 1  # not a SynthVVI root: said in words


@pytest.mark.slow
@pytest.mark.skipif(
    not (COMMITTED / "info" / "synthvvi.json").is_file()
    or json.loads((COMMITTED / "info" / "synthvvi.json").read_text()).get("synthvvi_version", 1) != SYNTHVVI_VERSION,
    reason="the committed split is not SynthVVI v2",
)
def test_committed_split_is_exactly_what_the_generator_writes(tmp_path):
    """`python -m lsmrl synth --seed 0` + `synth-export` reproduce assets/synthvvi byte for byte (test identities only)."""
    manifest = json.loads((COMMITTED / "info" / "synthvvi.json").read_text())
    args = manifest["args"]
    out = tmp_path / "regenerated"
    generate_synthvvi(
        out, seed=manifest["seed"], train_identities=args["train_identities"], test_identities=args["test_identities"],
        frames=tuple(args["frames"]), infrared=args["infrared"], visible_tracklets=args["visible_tracklets"],
        infrared_tracklets=args["infrared_tracklets"], height=args["height"], width=args["width"],
        cameras=args["cameras"], jpeg_quality=args["jpeg_quality"], layout=args["layout"],
        progress=False, workers=2, splits=("test",),
    )
    export_test_split(out, tmp_path / "export")
    assert (tmp_path / "export" / MANIFEST).read_text() == (COMMITTED / MANIFEST).read_text()


def test_reader_reports_the_generator_version(small_v2):
    from lsmrl.data.registry import build_dataset

    assert build_dataset("synthvvi", small_v2).synthvvi_version == 2
    legacy = json.loads((small_v2 / "info" / "synthvvi.json").read_text())
    legacy.pop("synthvvi_version")
    from lsmrl.data.datasets.synthvvi import synthvvi_version

    assert synthvvi_version(legacy) == 1  # files written before versions existed
