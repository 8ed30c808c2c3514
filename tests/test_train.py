"""Training smoke tests: miniature CLIP pretraining, both LSMRL stages, resume, eval CLI (tiny split)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from lsmrl.cli import main as cli_main
from lsmrl.config import PretrainConfig, load_config
from lsmrl.data.registry import build_dataset
from lsmrl.data.sampling import CLIP_MEAN, CLIP_STD
from lsmrl.engine.data import label_map, train_loader
from lsmrl.engine.pretrain_clip import pretrain_clip, read_clip_sidecar
from lsmrl.engine.stage2 import Stage2Losses, set_trainable
from lsmrl.engine.trainer import build_model, train
from lsmrl.errors import ConfigError
from lsmrl.model.checkpoint import load_model
from lsmrl.model.lsmrl import LSMRLConfig
from lsmrl.synth import generate_synthvvi

TINY = ["stage1.steps=3", "stage1.batch_size=8", "stage1.feature_passes=1", "stage2.steps=2",
        "stage2.log_every=1", "stage2.checkpoint_every=2", "data.identities_per_batch=3",
        "data.tracklets_per_modality=1", "model.num_frames=2"]


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    generate_synthvvi(root, seed=5, train_identities=4, test_identities=4, frames=12, progress=False, workers=1)
    return root


@pytest.fixture(scope="module")
def clip_weights(synth_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("clip") / "clip.safetensors"
    summary = pretrain_clip(str(synth_root), out, PretrainConfig(steps=2, batch_size=8, warmup_steps=1,
                                                                 visible_grayscale_prob=0.5), seed=0)
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
                                                       "model.i2t=false", "model.modality_losses=false"])
    train(config, tmp_path, None, evaluate=False)
    assert not (tmp_path / "stage1.safetensors").exists()
    model, _ = load_model(tmp_path / "model.safetensors")
    assert model.config.is_baseline


def test_eval_record_puts_the_metrics_of_a_no_eval_run_into_its_sidecar(synth_root, tmp_path, capsys):
    config = load_config("mini_synthvvi.yaml", TINY + [f"data.root={synth_root}", "model.grouped=false",
                                                       "model.shift=false", "model.sd=false", "model.cmi=false",
                                                       "model.i2t=false", "model.modality_losses=false"])
    train(config, tmp_path, None, evaluate=False)
    checkpoint = tmp_path / "model.safetensors"
    weights = checkpoint.read_bytes()
    assert json.loads((tmp_path / "model.json").read_text()).get("metrics") is None
    out = tmp_path / "eval.json"
    assert cli_main(["eval", "--checkpoint", str(checkpoint), "--data-root", str(synth_root), "--json", str(out),
                     "--record"]) == 0
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["metrics"] == json.loads(out.read_text())
    assert meta["data"]["metrics_fingerprint"] == meta["data"]["fingerprint"]
    assert checkpoint.read_bytes() == weights  # the weights are untouched
    load_model(checkpoint)  # and still load
    # figures of other data are never overwritten
    other = tmp_path / "other"
    generate_synthvvi(other, seed=6, train_identities=0, test_identities=3, frames=12, progress=False, workers=1)
    assert cli_main(["eval", "--checkpoint", str(checkpoint), "--data-root", str(other), "--json",
                     str(tmp_path / "other.json"), "--record"]) == 1
    assert "metrics of other data" in capsys.readouterr().err
    assert json.loads((tmp_path / "model.json").read_text())["metrics"] == meta["metrics"]


def test_every_trainable_parameter_gets_a_gradient(synth_root):
    config = load_config("mini_synthvvi.yaml", TINY + [f"data.root={synth_root}", "stage2.freeze_blocks=0"])
    dataset = build_dataset("synthvvi", str(synth_root))
    labels = label_map(dataset.train)
    model = build_model(config, len(labels), None, [t.caption for t in dataset.train])
    model.refresh_prompt_bank()
    set_trainable(model, config.stage2)
    losses = Stage2Losses(model, config)
    batch = next(iter(train_loader(dataset.train, labels, tuple(config.model.image_size), config.data, seed=0)))
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


def _pixels(frames: torch.Tensor) -> torch.Tensor:
    """Normalised (T, 3, H, W) model input back to pixel values in [0, 1]."""
    return frames * torch.tensor(CLIP_STD).view(1, 3, 1, 1) + torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)


def test_visible_grayscale_augmentation_greys_visible_tracklets_only(synth_root):
    from lsmrl.engine.data import TrackletClips

    dataset = build_dataset("synthvvi", str(synth_root))
    visible = next(t for t in dataset.train if t.modality == "visible")
    clips = TrackletClips([visible], 2, (128, 64), train=True, labels={visible.pid: 0}, flip_prob=0.0,
                          padding=0, visible_grayscale_prob=1.0)
    pixels = _pixels(clips[(0, 7)]["frames"])
    assert torch.allclose(pixels[:, 0], pixels[:, 1], atol=2e-2) and torch.allclose(pixels[:, 1], pixels[:, 2], atol=2e-2)
    in_colour = TrackletClips([visible], 2, (128, 64), train=True, labels={visible.pid: 0}, flip_prob=0.0,
                              padding=0)[(0, 7)]["frames"]
    colour = _pixels(in_colour)
    assert (colour[:, 0] - colour[:, 2]).abs().max() > 0.1


def test_channel_exchange_augmentation_uses_one_colour_channel(synth_root):
    """CAJ's channel-exchangeable augmentation: every visible frame becomes one of its own R, G, B channels."""
    from lsmrl.engine.data import TrackletClips, to_single_channel

    frames = np.arange(2 * 2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 2, 3)
    for channel in range(3):
        single = to_single_channel(frames, channel)
        assert single.shape == frames.shape
        assert (single == frames[..., channel : channel + 1]).all()

    dataset = build_dataset("synthvvi", str(synth_root))
    visible = next(t for t in dataset.train if t.modality == "visible")
    infrared = next(t for t in dataset.train if t.modality == "infrared")
    raw = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in visible.frames])
    seen = set()
    for seed in range(12):
        clips = TrackletClips([visible, infrared], 2, tuple(raw.shape[1:3]), train=True, flip_prob=0.0, padding=0,
                              visible_channel_prob=1.0)
        pixels = _pixels(clips[(0, seed)]["frames"])
        assert torch.allclose(pixels[:, 0], pixels[:, 1], atol=2e-2) and torch.allclose(pixels[:, 1], pixels[:, 2],
                                                                                        atol=2e-2)
        # which channel: the grey level matches exactly one of the source frame's channels
        grey = pixels[0, 0].numpy() * 255
        errors = [float(np.abs(grey - raw[..., c].astype(np.float32)).mean(axis=(1, 2)).min()) for c in range(3)]
        seen.add(int(np.argmin(errors)))
    assert seen == {0, 1, 2}, seen


def test_grey_visible_frames_are_paired_with_the_colour_free_caption(synth_root):
    """Pretraining's grey visible frames take their identity's infrared caption: no colour word, same shape words."""
    from lsmrl.engine.pretrain_clip import colour_free_captions
    from lsmrl.synth.identities import COLOUR_WORDS

    dataset = build_dataset("synthvvi", str(synth_root))
    captions = colour_free_captions(dataset.train)
    assert set(captions) == {t.pid for t in dataset.train}
    for t in dataset.train:
        if t.modality == "visible":
            words = captions[t.pid].replace(",", "").split()
            assert not set(words) & set(COLOUR_WORDS), captions[t.pid]
            # the colour-free caption is the visible caption with its colour words taken out
            kept = [w for w in t.caption.replace(",", " ,").split() if w not in COLOUR_WORDS]
            assert " ".join(kept).replace(" ,", ",") == captions[t.pid]


def test_train_demo_from_scratch_records_every_stage_and_the_baseline_reuses_the_clip(synth_root, tmp_path):
    tiny = ["pretrain.steps=2", "pretrain.batch_size=8", "pretrain.warmup_steps=1"] + TINY
    assert cli_main(["train-demo", "--data-root", str(synth_root), "--out", str(tmp_path), *tiny]) == 0
    meta = json.loads((tmp_path / "full" / "model.json").read_text())
    timings = meta["demo"]["timings"]
    # every stage is timed (to 0.1 s: a stage of this tiny run can round to 0.0 on a fast CPU)
    stages = ("pretrain_s", "stage1_s", "stage2_s", "calibrate_s", "eval_s")
    for key in stages:
        assert isinstance(timings[key], (int, float)) and timings[key] >= 0, key
    assert timings["total_s"] > 0 and timings["total_s"] >= max(timings[key] for key in stages)
    assert timings["precision"] in ("bf16", "fp32")
    # the sidecar records the recipe the CLIP was pretrained with (here: the tiny overrides)
    assert meta["training"]["config"]["pretrain"] == read_clip_sidecar(tmp_path / "clip.safetensors")["pretrain"]
    assert meta["training"]["config"]["pretrain"]["steps"] == 2
    assert meta["metrics"]["infrared_to_visible"]["mAP"] >= 0
    assert set(meta["training"]["module_effects"]) == {"sd", "cmi"}
    assert meta["training"]["calibration"]["memory_filled"] == 1.0
    clip = (tmp_path / "clip.safetensors").read_bytes()
    # the baseline reuses the CLIP: its sidecar says how that CLIP was pretrained, not what this config would do
    assert cli_main(["train-demo", "--data-root", str(synth_root), "--out", str(tmp_path), "--baseline", *tiny,
                     "pretrain.steps=7"]) == 0
    baseline = json.loads((tmp_path / "baseline" / "model.json").read_text())
    assert baseline["training"]["config"]["pretrain"]["steps"] == 2
    assert LSMRLConfig.from_dict(baseline["model_config"]).is_baseline
    assert "pretrain_s" not in baseline["demo"]["timings"] and (tmp_path / "clip.safetensors").read_bytes() == clip
    assert not (tmp_path / "baseline" / "stage1.safetensors").exists()  # no prompts: no stage 1


def test_clause_dropout_keeps_true_items_and_at_least_one_of_each_kind():
    import numpy as np

    from lsmrl.synth.captions import caption_clauses, drop_clauses

    caption = ("a tall person with long black hair, a bag and a hat, wearing a red striped top with long sleeves, "
               "black trousers and white sneakers")
    subject, carried, worn = caption_clauses(caption)
    assert subject == "a tall person" and carried == ["long black hair", "a bag", "a hat"]
    assert worn == ["a red striped top with long sleeves", "black trousers", "white sneakers"]
    assert drop_clauses(caption, 0.0, np.random.default_rng(0)) == caption
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        dropped = drop_clauses(caption, 0.5, rng)
        kept_subject, kept_carried, kept_worn = caption_clauses(dropped)
        assert kept_subject == subject and kept_carried and kept_worn
        assert set(kept_carried) <= set(carried) and set(kept_worn) <= set(worn)
        seen.add(dropped)
    assert len(seen) > 10  # the strings vary
    only_one = drop_clauses(caption, 1.0, np.random.default_rng(1))
    assert len(caption_clauses(only_one)[1]) == 1 and len(caption_clauses(only_one)[2]) == 1


def test_batch_augmentation_is_a_flip_and_a_padded_crop_of_each_item():
    """Every augmented item equals its frames, maybe flipped, zero-padded by 2 and cropped at some offset,
    normalised as FrameTransform normalises; the frames of one item share the draw."""
    from lsmrl.data.sampling import CLIP_MEAN, CLIP_STD
    from lsmrl.engine.frame_bank import augment_batch

    frames = torch.randint(0, 256, (4, 2, 3, 8, 4), dtype=torch.uint8)
    out = augment_batch(frames, torch.Generator().manual_seed(0), flip_prob=0.5, padding=2)
    mean, std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    flips = set()
    for item in range(4):
        matches = []
        for flip in (False, True):
            raw = frames[item].float() / 255
            padded = torch.nn.functional.pad(raw.flip(-1) if flip else raw, (2, 2, 2, 2))
            for top in range(5):
                for left in range(5):
                    crop = (padded[:, :, top:top + 8, left:left + 4] - mean) / std
                    if torch.allclose(crop, out[item], atol=1e-6):
                        matches.append(flip)
        assert matches, item
        flips.add(matches[0])
    single = augment_batch(frames[:, 0], torch.Generator().manual_seed(0), flip_prob=0.0, padding=0)
    torch.testing.assert_close(single, (frames[:, 0].float() / 255 - mean) / std)


def test_frame_bank_holds_the_resized_frames_of_the_transform(synth_root):
    import numpy as np

    from lsmrl.data.sampling import _read_image, build_transform
    from lsmrl.engine.frame_bank import FrameBank

    dataset = build_dataset("synthvvi", str(synth_root))
    bank = FrameBank(dataset.train[:2], (64, 32), progress=False)
    tracklet = dataset.train[1]
    assert bank.frames[1].shape == (len(tracklet.frames), 3, 64, 32) and bank.frames[1].dtype == torch.uint8
    reference = build_transform((64, 32), train=False, mean=(0, 0, 0), std=(1, 1, 1))(
        [_read_image(tracklet.frames[3])])[0]
    assert (bank.frames[1][3].float() / 255 - reference).abs().max() <= 0.5 / 255 + 1e-6  # uint8 rounding only
    drawn = bank.random_frames([0, 1, 1], np.random.default_rng(0))
    assert drawn.shape == (3, 3, 64, 32)


def test_shared_caption_pretraining_runs_in_both_frame_sources(synth_root, tmp_path):
    for frames_in_ram in (True, False):
        config = PretrainConfig(steps=2, batch_size=8, warmup_steps=1, caption_mode="shared", clause_dropout=0.2,
                                frames_in_ram=frames_in_ram, image_size=(64, 32))
        summary = pretrain_clip(str(synth_root), tmp_path / f"clip{frames_in_ram}.safetensors", config, seed=0)
        assert summary["pretrain"]["caption_mode"] == "shared" and np.isfinite(summary["log"][-1]["loss"])
        assert summary["precision_choice"]["precision"] == summary["precision"]
    with pytest.raises(ValueError, match="caption_mode"):
        PretrainConfig(caption_mode="both")


def test_pretraining_probes_a_validation_draw_and_keeps_each_probed_step(synth_root, tmp_path):
    config = PretrainConfig(steps=2, batch_size=8, warmup_steps=1, caption_mode="shared", image_size=(64, 32))
    out = tmp_path / "clip.safetensors"
    summary = pretrain_clip(str(synth_root), out, config, seed=0, log_path=tmp_path / "log.jsonl",
                            probe_root=synth_root, probe_every=1)
    assert [record["step"] for record in summary["validation"]] == [1, 2]
    for modality in ("visible", "infrared"):
        assert 0 <= summary["validation"][0][modality]["caption_top1"] <= 100
    assert (tmp_path / "clip.step1.safetensors").is_file() and not (tmp_path / "clip.step2.safetensors").exists()
    snapshot = read_clip_sidecar(tmp_path / "clip.step1.safetensors")
    assert snapshot["step"] == 1 and snapshot["tokenizer"] == summary["tokenizer"]
    logged = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["validation"]["step"] for r in logged if "validation" in r] == [1, 2]


def test_clips_from_the_frame_bank_equal_clips_from_disk(synth_root):
    """The same frame draws, flips and crops either way; pixels differ only by the bank's uint8 rounding."""
    from lsmrl.engine.data import TrackletClips
    from lsmrl.engine.frame_bank import FrameBank

    dataset = build_dataset("synthvvi", str(synth_root))
    labels = label_map(dataset.train)
    common = dict(labels=labels, padding=2, visible_grayscale_prob=0.3, visible_channel_prob=0.3)
    disk = TrackletClips(dataset.train, 4, (64, 32), train=True, **common)
    ram = TrackletClips(dataset.train, 4, (64, 32), train=True, bank=FrameBank(dataset.train, (64, 32), False),
                        **common)
    for item in [(0, 11), (3, 12), (len(dataset.train) - 1, 13)]:
        a, b = disk[item], ram[item]
        assert a["label"] == b["label"] and a["modality"] == b["modality"]
        assert (a["frames"] - b["frames"]).abs().max() < 0.02  # 0.5/255 in [0, 1], over CLIP's std (~0.27)
    with pytest.raises(ValueError, match="frame bank"):
        TrackletClips(dataset.train[:1], 4, (64, 32), train=True, bank=FrameBank(dataset.train[:2], (64, 32), False))


def test_stage1_with_all_negatives_moves_every_prompt_and_batch_negatives_only_the_batch():
    """Features of identities 0 and 1 only: with CLIP-ReID's batch negatives the prompts of 2 and 3 never move;
    with every prompt as a negative they are pushed away from 0's and 1's features, and 0 and 1 are retrieved."""
    from lsmrl.config import Stage1Config
    from lsmrl.engine.stage1 import prompt_retrieval_accuracy, train_prompts
    from tests.helpers import tiny_model

    generator = torch.Generator().manual_seed(0)
    features = torch.randn(2, 128, generator=generator).repeat_interleave(8, 0) + 0.05 * torch.randn(16, 128, generator=generator)
    labels = torch.tensor([0] * 8 + [1] * 8)
    moved = {}
    for negatives in ("batch", "all"):
        torch.manual_seed(0)
        model = tiny_model(num_classes=4)
        before = model.prompt_learner.identity_context.detach().clone()
        config = Stage1Config(steps=20, batch_size=8, lr=1e-2, warmup_steps=1, weight_decay=0.0, negatives=negatives)
        train_prompts(model, features, labels, config, seed=0, device="cpu")
        after = model.prompt_learner.identity_context.detach()
        moved[negatives] = [(after[i] - before[i]).abs().max().item() for i in range(4)]
        if negatives == "all":
            assert prompt_retrieval_accuracy(model, features, labels) == 1.0
    assert moved["batch"][2] == 0.0 and moved["batch"][3] == 0.0 and moved["batch"][0] > 0
    assert moved["all"][2] > 0 and moved["all"][3] > 0
    with pytest.raises(ValueError, match="negatives"):
        Stage1Config(negatives="some")


def test_stage2_validates_on_its_own_draw_every_n_steps(synth_root, tmp_path):
    config = load_config("mini_synthvvi.yaml", TINY + [f"data.root={synth_root}", f"data.val_root={synth_root}",
                                                       "stage2.validate_every=1", "model.sd=false", "model.cmi=false"])
    train(config, tmp_path, None, evaluate=False)
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    validation = [r for r in records if "validation" in r]
    assert [r["step"] for r in validation] == [1, 2]
    for direction in ("infrared_to_visible", "visible_to_infrared"):
        assert 0 <= validation[-1]["validation"][direction]["mAP"] <= 100
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["training"]["validation"] == validation
    assert meta["training"]["timings"]["frames_in_ram_mb"] > 0  # training read its frames from RAM


def test_stage1_sweep_tool_reports_each_variant_from_the_same_start(synth_root, clip_weights, tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "tools" / "stage1_sweep.py"
    spec = importlib.util.spec_from_file_location("stage1_sweep", path)
    sweep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sweep)
    out = tmp_path / "sweep.json"
    variant = "steps=3,lr=1e-3,negatives=all"
    assert sweep.main(["--clip-weights", str(clip_weights), "--data-root", str(synth_root), "--json", str(out),
                       "--variant", variant, "--variant", variant, "--variant", "steps=2,negatives=batch"]) == 0
    report = json.loads(out.read_text())
    first, again, other = report["results"]
    assert first["prompt_top1_train"] == again["prompt_top1_train"]  # the same start and seed: the same result
    assert other["stage1"]["negatives"] == "batch" and report["cpu"] and report["identities"] == 4
    with pytest.raises(SystemExit, match="unknown variant keys"):
        sweep.parse_variant("step=3")


def test_stage2_throughput_tool_times_every_variant(synth_root, tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "tools" / "stage2_throughput.py"
    spec = importlib.util.spec_from_file_location("stage2_throughput", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / "throughput.json"
    assert tool.main(["--data-root", str(synth_root), "--steps", "2", "--warmup", "0", "--json", str(out),
                      "data.identities_per_batch=2", "model.num_frames=2"]) == 0
    report = json.loads(out.read_text())
    assert set(report["variants"]) == set(tool.VARIANTS) and report["cpu"]
    for name, figures in report["variants"].items():
        assert figures["step_s_median"] == pytest.approx(figures["data_s_median"] + figures["compute_s_median"],
                                                         abs=2e-4)
    assert report["variants"]["ram, fp32"]["precision"] == "fp32"
    assert report["variants"]["disk, auto precision"]["speedup_vs_disk"] == 1.0
