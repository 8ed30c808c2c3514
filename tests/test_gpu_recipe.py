"""The GPU recipe (tools/gpu_recipe.py) runs end to end on the CPU at its tiny budget."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[1] / "tools" / "gpu_recipe.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_recipe", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_gpu_budget_is_the_one_the_issue_names():
    recipe = _load()
    gpu = recipe.BUDGETS["gpu"]
    assert gpu.train_identities == 2000 and gpu.image_size == (128, 64) and gpu.seeds == (0, 1, 2)
    assert len(gpu.draw_seeds) == 5 and 7 not in gpu.draw_seeds and 0 not in gpu.draw_seeds  # never tuned on
    names = [command[0] for command in recipe.commands(Path("OUT"), gpu, "cuda")]
    assert names == ["synth", "synth", "pretrain-clip", "ablation", "eval-draws", "language-probe", "language-probe"]


@pytest.mark.slow
def test_the_recipe_runs_at_a_tiny_budget_and_writes_everything_under_one_folder(tmp_path):
    recipe = _load()
    assert recipe.main(["--out", str(tmp_path), "--budget", "tiny", "--device", "cpu"]) == 0
    log = json.loads((tmp_path / "recipe.json").read_text())
    assert [step["exit"] for step in log["steps"]] == [0] * 7
    draws = json.loads((tmp_path / "eval_draws.json").read_text())
    assert draws["difference"]["both_directions"]["mAP"]["ci95"] is not None
    for row in ("1_baseline", "2_stfl", "3_sd", "4_cmi", "5_full"):
        meta = json.loads((tmp_path / "ablation" / "seed0" / row / "model.json").read_text())
        assert meta["training"]["validation"], row  # validation mAP in every run
    probe = json.loads((tmp_path / "language_probe_val7.json").read_text())
    assert probe["kind"] == "lsmrl"
    assert all(path.resolve().is_relative_to(tmp_path.resolve()) for path in tmp_path.rglob("*"))
