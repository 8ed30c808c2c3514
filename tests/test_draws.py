"""eval-draws (a model across fresh draws, the paired difference with its interval) and language-probe."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from lsmrl.cli import main as cli_main
from lsmrl.data.registry import build_dataset
from lsmrl.engine import draws
from lsmrl.engine.zero_shot import SHARED_PROBES, caption_retrieval, colour_free_captions
from lsmrl.model.checkpoint import save_checkpoint
from lsmrl.synth import generate_synthvvi
from tests.helpers import tiny_model

SEEDS = (21, 22, 23)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    out = tmp_path_factory.mktemp("draw_checkpoints")
    paths = {}
    for name, seed, overrides in (("full", 0, {}), ("baseline", 1, dict(grouped=False, shift=False, sd=False,
                                                                        cmi=False))):
        torch.manual_seed(seed)
        paths[name] = save_checkpoint(tiny_model(num_classes=4, **overrides), out / f"{name}.safetensors")
    return paths


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("draws")
    for seed in SEEDS:  # tiny draws made here (frames=12 keeps them fast); eval-draws finds them complete
        folder = draws.draw_root(root, seed, 3)
        generate_synthvvi(folder, seed=seed, train_identities=0, test_identities=3, frames=12, progress=False,
                          workers=1)
        (folder / draws._COMPLETE).write_text("{}\n")
    return root


def test_eval_draws_reports_each_draw_the_mean_sd_and_the_paired_interval(checkpoints, cache, tmp_path):
    out = tmp_path / "draws.json"
    assert cli_main(["eval-draws", "--checkpoint", str(checkpoints["full"]), "--compare", str(checkpoints["baseline"]),
                     "--seeds", *map(str, SEEDS), "--identities", "3", "--cache", str(cache), "--json", str(out),
                     "--precision", "fp32"]) == 0
    report = json.loads(out.read_text())
    assert [d["seed"] for d in report["draws"]] == list(SEEDS) and report["cpu"]
    assert len({d["data_fingerprint"] for d in report["draws"]}) == 3  # three different draws
    # each draw evaluated as `eval` would: one draw, checked against evaluate_model directly
    from lsmrl.engine.extract import evaluate_model
    from lsmrl.model.checkpoint import load_model

    model, _ = load_model(checkpoints["full"])
    metrics, _, _ = evaluate_model(model, build_dataset("synthvvi", str(draws.draw_root(cache, SEEDS[1], 3))),
                                   progress=False, precision="fp32")
    for direction, figures in metrics.items():
        assert report["draws"][1]["model"][direction]["mAP"] == pytest.approx(figures["mAP"], abs=1e-3)
    # the summary: mean and sample sd (n - 1) of the per-draw figures
    for role in ("model", "compare"):
        values = np.array([d[role]["infrared_to_visible"]["mAP"] for d in report["draws"]])
        summary = report["summary"][role]["infrared_to_visible"]["mAP"]
        assert summary["mean"] == pytest.approx(values.mean(), abs=0.01)
        assert summary["sd"] == pytest.approx(values.std(ddof=1), abs=0.01) and summary["n"] == 3
        both = [np.mean([d[role][name]["rank1"] for name in ("infrared_to_visible", "visible_to_infrared")])
                for d in report["draws"]]
        assert report["summary"][role]["both_directions"]["rank1"]["mean"] == pytest.approx(np.mean(both), abs=0.01)
    # the paired difference: per draw, its mean, and mean +- t(0.975, 2) * sd / sqrt(3) (t = 4.3027)
    diffs = np.array([d["model"]["visible_to_infrared"]["mAP"] - d["compare"]["visible_to_infrared"]["mAP"]
                      for d in report["draws"]])
    lead = report["difference"]["visible_to_infrared"]["mAP"]
    assert lead["per_draw"] == pytest.approx(diffs, abs=0.01) and lead["mean"] == pytest.approx(diffs.mean(), abs=0.01)
    half = 4.302653 * diffs.std(ddof=1) / math.sqrt(3)
    assert lead["ci95"] == pytest.approx([diffs.mean() - half, diffs.mean() + half], abs=0.02)
    assert set(report["draws"][0]["model_within_modality"]) <= {"infrared_to_infrared", "visible_to_visible"}


def test_a_model_against_itself_leads_by_exactly_nothing(checkpoints, cache):
    report = draws.eval_draws(checkpoints["full"], list(SEEDS[:2]), 3, cache, compare=checkpoints["full"],
                              precision="fp32")
    for figures in report["difference"].values():
        for key in ("rank1", "mAP"):
            assert figures[key]["per_draw"] == [0.0, 0.0] and figures[key]["ci95"] == [0.0, 0.0]


def test_eval_draws_generates_a_missing_draw_once_and_refuses_repeated_seeds(checkpoints, tmp_path, monkeypatch):
    calls = []
    real = draws.generate_synthvvi

    def tiny_generate(root, **kwargs):
        calls.append(kwargs["seed"])
        return real(root, **{**kwargs, "frames": 12, "workers": 1})

    monkeypatch.setattr(draws, "generate_synthvvi", tiny_generate)
    first = draws.ensure_draw(tmp_path, 31, 2)
    assert draws.ensure_draw(tmp_path, 31, 2) == first and calls == [31]  # the second call reuses it
    assert len(build_dataset("synthvvi", str(first)).test) > 0
    from lsmrl.errors import LSMRLError

    with pytest.raises(LSMRLError, match="repeats a seed"):
        draws.eval_draws(checkpoints["full"], [31, 31], 2, tmp_path)


def test_caption_retrieval_counts_identical_captions_as_correct(cache):
    """Hand-made features: every tracklet's image feature is its own caption's text feature, so top-1 is 100%;
    with two identities given the same caption, both still count as correct."""
    dataset = build_dataset("synthvvi", str(draws.draw_root(cache, SEEDS[0], 3)))
    own = colour_free_captions(dataset.test)
    texts = sorted(set(own.values()))

    def encode_text(batch):
        return torch.nn.functional.one_hot(torch.tensor([texts.index(t) for t in batch]), len(texts)).float()

    images = torch.stack([encode_text([own[t.pid]])[0] for t in dataset.test])
    result = caption_retrieval(images, encode_text, dataset)
    assert result["visible"]["top1"] == 100.0 and result["infrared"]["top1"] == 100.0
    assert result["chance"] == pytest.approx(100.0 / len(texts), abs=0.01)
    shuffled = torch.roll(images, 1, dims=1)  # every tracklet now points at another caption
    assert caption_retrieval(shuffled, encode_text, dataset)["infrared"]["top1"] == 0.0 or len(texts) == 1


def test_language_probe_runs_on_an_lsmrl_checkpoint(checkpoints, cache, tmp_path):
    out = tmp_path / "probe.json"
    assert cli_main(["language-probe", "--checkpoint", str(checkpoints["full"]), "--data-root",
                     str(draws.draw_root(cache, SEEDS[0], 3)), "--json", str(out), "--precision", "fp32"]) == 0
    result = json.loads(out.read_text())
    assert result["kind"] == "lsmrl" and result["chance"]["attribute_balanced_accuracy"] == 50.0
    for modality in ("visible", "infrared"):
        figures = result[modality]
        assert 0.0 <= figures["caption_top1"] <= 100.0 and figures["tracklets"] > 0
        assert figures["attribute_balanced_accuracy"] is None or 0.0 <= figures["attribute_balanced_accuracy"] <= 100.0
    assert set(result["shared_probes"]) == set(SHARED_PROBES) and "tall" not in SHARED_PROBES
    from lsmrl.engine.zero_shot import is_colour_probe

    assert result["per_probe"] and not any(is_colour_probe(name) for name in result["per_probe"])  # none asked
