"""Training smoke tests: miniature CLIP pretraining, both LSMRL stages, resume, eval CLI (tiny split)."""

from __future__ import annotations

import json

import pytest
import torch

from lsmrl.cli import main as cli_main
from lsmrl.config import load_config
from lsmrl.data.registry import build_dataset
from lsmrl.data.synth import generate_synthvvi
from lsmrl.engine.data import label_map, train_loader
from lsmrl.engine.pretrain_clip import pretrain_clip, read_clip_sidecar
from lsmrl.engine.stage2 import Stage2Losses, set_trainable
from lsmrl.engine.trainer import build_model, train
from lsmrl.errors import ConfigError
from lsmrl.config import PretrainConfig
from lsmrl.model.checkpoint import load_model

TINY = ["stage1.steps=3", "stage1.batch_size=8", "stage1.feature_passes=1", "stage2.steps=2",
        "stage2.log_every=1", "stage2.checkpoint_every=2", "data.identities_per_batch=3",
        "data.tracklets_per_modality=1", "data.num_frames=2"]


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    generate_synthvvi(root, seed=5, train_identities=4, test_identities=4, frames=12, progress=False, workers=1)
    return root


@pytest.fixture(scope="module")
def clip_weights(synth_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("clip") / "clip.safetensors"
    summary = pretrain_clip(str(synth_root), out, PretrainConfig(steps=2, batch_size=8, warmup_steps=1), seed=0)
    assert summary["zero_shot"]["mean_balanced_accuracy"]["visible"] is not None
    return out


def test_pretrained_clip_sidecar_carries_the_vocabulary(clip_weights):
    sidecar = read_clip_sidecar(clip_weights)
    assert sidecar["clip_model"] == "lsmrl-mini"
    words = sidecar["tokenizer"]["words"]
    assert "backpack" in words and "x" in words and "person" in words
    assert len(sidecar["log"]) >= 1


def test_two_stage_training_writes_checkpoints_logs_and_metrics(synth_root, clip_weights, tmp_path):
    config = load_config("mini_synthvvi.yaml", TINY + [f"data.root={synth_root}"])
    summary = train(config, tmp_path, str(clip_weights))
    for name in ("stage1.safetensors", "stage1.json", "model.safetensors", "model.json", "config.yaml",
                 "log.jsonl", "metrics.json", "metrics.queries.json", "last.safetensors", "last_state.pt"):
        assert (tmp_path / name).is_file(), name
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert any(r.get("stage") == 1 for r in records)
    stage2 = [r for r in records if r.get("stage") == 2 and "loss" in r]
    assert [r["step"] for r in stage2] == [1, 2]
    assert {"id", "triplet", "i2t", "modality_center", "modality_contrastive"} <= set(stage2[0])
    metrics = summary["metrics"]
    for direction in ("infrared_to_visible", "visible_to_infrared"):
        assert set(metrics[direction]) >= {"rank1", "rank5", "rank10", "rank20", "mAP", "mINP"}
        assert 0 <= metrics[direction]["mAP"] <= 100
    # the checkpoint alone rebuilds the model (no data set, no class count)
    model, meta = load_model(tmp_path / "model.safetensors")
    assert meta["metrics"] == json.loads((tmp_path / "metrics.json").read_text())
    assert meta["data"]["train_identities"] == 4
    # the explicit hand-off: stage 2 kept exactly the stage-1 prompts
    stage1, _ = load_model(tmp_path / "stage1.safetensors")
    assert torch.equal(stage1.prompt_learner.identity_context, model.prompt_learner.identity_context)
    # the eval CLI reproduces the training-time figures
    out = tmp_path / "eval.json"
    assert cli_main(["eval", "--checkpoint", str(tmp_path / "model.safetensors"), "--data-root", str(synth_root),
                     "--json", str(out)]) == 0
    evaluated = json.loads(out.read_text())
    for direction in metrics:
        assert evaluated[direction]["mAP"] == pytest.approx(metrics[direction]["mAP"], abs=1e-6)
    queries = json.loads((tmp_path / "eval.queries.json").read_text())
    first = queries["infrared_to_visible"][0]
    assert {"query", "ap", "inp", "first_match_rank", "topk_indices", "topk_distances"} <= set(first)


def test_resume_continues_from_the_last_step(synth_root, clip_weights, tmp_path):
    config = load_config("mini_synthvvi.yaml", TINY + [f"data.root={synth_root}"])
    train(config, tmp_path, str(clip_weights), evaluate=False)
    longer = load_config("mini_synthvvi.yaml", TINY + [f"data.root={synth_root}", "stage2.steps=3"])
    train(longer, tmp_path, str(clip_weights), resume=True, evaluate=False)
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if r.get("stage") == 2 and "loss" in r]
    assert steps == [1, 2, 3]  # resumed at 2, ran only step 3


def test_baseline_skips_stage_one(synth_root, tmp_path):
    config = load_config("mini_synthvvi.yaml", TINY + [f"data.root={synth_root}", "model.grouped=false",
                                                       "model.shift=false", "model.sd=false", "model.cmi=false",
                                                       "model.modality_losses=false"])
    train(config, tmp_path, None, evaluate=False)
    assert not (tmp_path / "stage1.safetensors").exists()
    model, _ = load_model(tmp_path / "model.safetensors")
    assert model.config.is_baseline


def test_every_trainable_parameter_gets_a_gradient(synth_root):
    config = load_config("mini_synthvvi.yaml", TINY + [f"data.root={synth_root}", "stage2.freeze_blocks=0"])
    dataset = build_dataset("synthvvi", str(synth_root))
    labels = label_map(dataset.train)
    model = build_model(config, len(labels), None, [t.caption for t in dataset.train])
    model.refresh_prompt_bank()
    set_trainable(model, config.stage2)
    losses = Stage2Losses(model, config)
    batch = next(iter(train_loader(dataset.train, labels, (128, 64), config.data, seed=0)))
    model.train()
    model(batch["frames"], batch["modalities"], labels=batch["labels"])  # fills the CMI memory
    out = model(batch["frames"], batch["modalities"], labels=batch["labels"])
    config.losses.total(losses(out, batch["labels"], batch["modalities"])).backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.startswith("semantic_diffusion") for n in trainable)
    assert any(n.startswith("cross_modal") for n in trainable)
    missing = [n for n, p in trainable.items() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, missing


def test_config_overrides_are_checked():
    with pytest.raises(ConfigError, match="unknown keys"):
        load_config(None, ["stage2.stepz=3"])
    with pytest.raises(ConfigError, match="key.sub=value"):
        load_config(None, ["stage2.steps"])
    with pytest.raises(ConfigError, match="not found"):
        load_config("no-such-config.yaml")


def test_scientific_notation_overrides_are_numbers():
    assert load_config(None, ["stage2.lr=5e-4"]).stage2.lr == 5e-4
    assert load_config(None, ["data.dataset=hitsz-vcm"]).data.dataset == "hitsz-vcm"


def test_visible_grayscale_augmentation_greys_visible_tracklets_only(synth_root):
    from lsmrl.engine.data import TrackletClips

    dataset = build_dataset("synthvvi", str(synth_root))
    visible = next(t for t in dataset.train if t.modality == "visible")
    clips = TrackletClips([visible], 2, (128, 64), train=True, labels={visible.pid: 0}, flip_prob=0.0,
                          padding=0, visible_grayscale_prob=1.0)
    frames = clips[(0, 7)]["frames"]
    from lsmrl.data.sampling import CLIP_MEAN, CLIP_STD

    pixels = frames * torch.tensor(CLIP_STD).view(1, 3, 1, 1) + torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    assert torch.allclose(pixels[:, 0], pixels[:, 1], atol=2e-2) and torch.allclose(pixels[:, 1], pixels[:, 2], atol=2e-2)
    in_colour = TrackletClips([visible], 2, (128, 64), train=True, labels={visible.pid: 0}, flip_prob=0.0,
                              padding=0)[(0, 7)]["frames"]
    colour = in_colour * torch.tensor(CLIP_STD).view(1, 3, 1, 1) + torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    assert (colour[:, 0] - colour[:, 2]).abs().max() > 0.1
