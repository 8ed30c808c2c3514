"""``python -m lsmrl ablation``: the per-seed table (mean, sample sd, lead over the baseline) on hand-made runs."""

from __future__ import annotations

import json
from argparse import Namespace

import pytest

from lsmrl.engine import ablation
from lsmrl.model.checkpoint import FORMAT


def _fake_run(directory, ir_map: float, vis_map: float, ir_rank1: float = 5.0) -> None:
    """A finished row as ``ablation_rows`` reads it: weights file plus sidecar with metrics."""
    directory.mkdir(parents=True)
    (directory / "model.safetensors").write_bytes(b"")
    metrics = {"infrared_to_visible": {"rank1": ir_rank1, "mAP": ir_map},
               "visible_to_infrared": {"rank1": 4.0, "mAP": vis_map}}
    (directory / "model.json").write_text(json.dumps({
        "format": FORMAT, "model_config": {}, "metrics": metrics,
        "training": {"timings": {"stage2_s": 10.0}, "config": {"stage2": {"steps": 5}}}}))


def test_seed_table_is_the_mean_and_sample_sd_and_the_lead_per_seed(tmp_path):
    _fake_run(tmp_path / "seed0" / "1_baseline", 10.0, 11.0, ir_rank1=4.0)
    _fake_run(tmp_path / "seed0" / "5_full", 13.0, 12.0, ir_rank1=8.0)
    _fake_run(tmp_path / "seed1" / "1_baseline", 12.0, 11.0, ir_rank1=6.0)
    _fake_run(tmp_path / "seed1" / "5_full", 13.0, 14.0, ir_rank1=6.0)
    _fake_run(tmp_path / "seed1" / "2_stfl", 9.0, 9.5)
    (tmp_path / "seedling").mkdir()  # not a seed directory
    lines = ablation.seed_table(tmp_path).splitlines()
    # baseline: IR→VIS mAP 10, 12 -> mean 11.0, sample sd 1.4; R1 4, 6 -> 5.0 (1.4); VIS→IR mAP 11, 11 -> 11.0 (0.0)
    assert "| frame-wise CLIP baseline | 2 | 5.0 (1.4) | 11.0 (1.4) | 4.0 (0.0) | 11.0 (0.0) |" in lines
    assert "| + STFL | 1 | 5.0 | 9.0 | 4.0 | 9.5 |" in lines  # one seed: no spread
    assert "| + modality losses (full LSMRL) | 2 | 7.0 (1.4) | 13.0 (0.0) | 4.0 (0.0) | 13.0 (1.4) |" in lines
    assert "| model | seed 0 | seed 1 |" in lines
    assert "| + modality losses (full LSMRL) | +3.0 / +1.0 | +1.0 / +3.0 |" in lines
    assert "| + STFL | n/a | -3.0 / -1.5 |" in lines
    assert not any(line.startswith("| + SD") or line.startswith("| + CMI") for line in lines)


def test_seeds_are_not_also_an_override(tmp_path):
    args = Namespace(seeds=[0, 1], overrides=["seed=3"], out=str(tmp_path), rows=["1_baseline"], data_root="x",
                     clip_weights=None, device=None)
    with pytest.raises(SystemExit, match="--seeds"):
        ablation.run(args)


def test_run_with_seeds_skips_finished_rows_and_writes_the_seed_table(tmp_path, capsys):
    for seed, value in ((0, 10.0), (1, 12.0)):
        _fake_run(tmp_path / f"seed{seed}" / "1_baseline", value, value)
    args = Namespace(seeds=[0, 1], overrides=[], out=str(tmp_path), rows=["1_baseline"], data_root="x",
                     clip_weights=None, device=None)
    assert ablation.run(args) == 0  # nothing to train: both rows are done
    assert "1_baseline: done already" in capsys.readouterr().out
    assert "| frame-wise CLIP baseline | 2 | 5.0 (0.0) | 11.0 (1.4) |" in (tmp_path / "seeds.md").read_text()
    assert (tmp_path / "seed1" / "ablation.md").is_file()  # each seed's own table, as without --seeds


def test_a_run_without_metrics_has_no_lead(tmp_path):
    _fake_run(tmp_path / "seed0" / "1_baseline", 10.0, 11.0)
    _fake_run(tmp_path / "seed0" / "5_full", 13.0, 12.0)
    sidecar = tmp_path / "seed0" / "5_full" / "model.json"
    meta = json.loads(sidecar.read_text())
    meta["metrics"] = {}  # trained with --no-eval
    sidecar.write_text(json.dumps(meta))
    lines = ablation.seed_table(tmp_path).splitlines()
    assert "| + modality losses (full LSMRL) | 1 | n/a | n/a | n/a | n/a |" in lines
    assert "| + modality losses (full LSMRL) | n/a |" not in lines  # no lead row at all without a figure


def test_rows_carry_seed_config_data_version_and_wall_time_and_control_rows_are_listed(tmp_path):
    directory = tmp_path / "8_full_minus_sd"
    directory.mkdir()
    (directory / "model.safetensors").write_bytes(b"")
    config = {"seed": 2, "stage2": {"steps": 7}, "model": {"sd": False}}
    (directory / "model.json").write_text(json.dumps({
        "format": FORMAT, "model_config": {}, "metrics": {"infrared_to_visible": {"rank1": 1.0, "mAP": 2.0}},
        "data": {"fingerprint": "abc", "synthvvi_version": 2},
        "training": {"timings": {"stage1_s": 3.0, "stage2_s": 10.0, "precision": "bf16"}, "config": config,
                     "module_effects": {"cmi": {"visible": {"share": 0.1}}}}}))
    [row] = ablation.ablation_rows(tmp_path)
    assert (row["row"], row["label"], row["seed"], row["steps"]) == ("8_full_minus_sd", "full - SD", 2, 7)
    assert row["wall_time_s"] == 13.0 and row["config"] == config
    assert (row["data_fingerprint"], row["synthvvi_version"]) == ("abc", 2)
    assert row["module_effects"]["cmi"]["visible"]["share"] == 0.1
    assert "| full - SD | 1.0 | 2.0 |" in ablation.ablation_table(tmp_path)
