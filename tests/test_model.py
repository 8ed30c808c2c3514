"""The LSMRL model: STFL equivalence, shift/grouping invariants, switches, checkpoints, weights."""

from __future__ import annotations

import json

import pytest
import torch

from lsmrl.errors import CheckpointError
from lsmrl.model.backbone import BackboneConfig, build_clip, load_clip_weights
from lsmrl.model.checkpoint import load_model, save_checkpoint, sidecar_path
from lsmrl.model.lsmrl import LSMRL
from lsmrl.model.stfl import STFL, STFLConfig, run_grouped, shift_offsets, temporal_shift, temporal_shift_index
from tests.helpers import tiny_config, tiny_model

MODALITIES = ["visible", "infrared", "visible", "infrared"]


@pytest.fixture(scope="module")
def clip():
    torch.manual_seed(0)
    return build_clip(BackboneConfig()).eval()


def test_stfl_off_equals_open_clip_visual_tower(clip):
    stfl = STFL(clip.visual, STFLConfig(grouped=False, shift=False))
    frames = torch.randn(2, 5, 3, 128, 64)
    with torch.no_grad():
        ours = stfl(frames)["frame_features"]
        reference = clip.visual(frames.flatten(0, 1)).reshape(2, 5, -1)
    assert (ours - reference).abs().max().item() <= 1e-5
    assert torch.allclose(stfl(frames)["sequence"], reference.mean(1), atol=1e-5)


def test_stfl_on_changes_features_but_keeps_parameters(clip):
    frames = torch.randn(1, 4, 3, 128, 64)
    plain = STFL(clip.visual, STFLConfig(grouped=False, shift=False))
    full = STFL(clip.visual, STFLConfig())
    assert full.block_kinds() == ["basic", "basic", "basic", "grouped", "shift", "shift"]
    assert sum(p.numel() for p in full.parameters()) == 0  # STFL adds no parameters
    with torch.no_grad():
        assert not torch.allclose(plain(frames)["sequence"], full(frames)["sequence"], atol=1e-4)


@pytest.mark.parametrize("edges", ["swap", "cyclic"])
def test_temporal_shift_is_a_permutation_and_inverse_restores(edges):
    offsets = shift_offsets((4, 3), ((-1, 0, 1), (0, 1, -1), (1, -1, 0)))
    assert offsets.tolist()[:6] == [-1, 0, 1, 0, 1, -1]
    index = temporal_shift_index(5, offsets, edges)
    for patch in range(offsets.numel()):  # each patch position: frames are permuted, none lost
        assert sorted(index[:, patch].tolist()) == list(range(5))
    x = torch.randn(2, 5, 12, 7)
    shifted = temporal_shift(x, offsets, edges=edges)
    assert torch.equal(temporal_shift(shifted, offsets, inverse=True, edges=edges), x)
    assert torch.equal(shifted.sort(dim=1).values, x.sort(dim=1).values)  # same multiset of tokens
    # a patch with offset +1 in frame t holds frame t+1's token
    plus, minus = offsets.tolist().index(1), offsets.tolist().index(-1)
    assert torch.equal(shifted[:, 0, plus], x[:, 1, plus])
    if edges == "cyclic":
        assert torch.equal(shifted[:, 4, plus], x[:, 0, plus])  # v1: wraps the first frame onto the last
    else:
        # never across the ends: only direct neighbours (or itself), the ends keep or swap inwards
        assert (index - torch.arange(5)[:, None]).abs().max() == 1
        assert torch.equal(shifted[:, 4, plus], x[:, 4, plus]) and torch.equal(shifted[:, 0, minus], x[:, 0, minus])
        assert index[:, plus].tolist() == [1, 0, 3, 2, 4] and index[:, minus].tolist() == [0, 2, 1, 4, 3]
        assert torch.equal(shifted[:, 1, minus], x[:, 2, minus])  # -1 pairs (1,2), (3,4): frame 1 reads frame 2


def test_grouped_attention_group_size_one_equals_per_frame(clip):
    block = clip.visual.transformer.resblocks[3]
    x = torch.randn(2, 4, 129, 192)
    with torch.no_grad():
        grouped = run_grouped(block, x, group_size=1)
        per_frame = block(x.reshape(8, 129, 192)).reshape(x.shape)
        joint = run_grouped(block, x, group_size=2)
    assert torch.allclose(grouped, per_frame, atol=1e-6)
    assert not torch.allclose(joint, per_frame, atol=1e-4)
    # an uneven T: the last, shorter group runs on its own
    with torch.no_grad():
        odd = run_grouped(block, x[:, :3], group_size=2)
        tail = block(x[:, 2]).reshape(2, 1, 129, 192)
    assert torch.allclose(odd[:, 2:], tail, atol=1e-6)


def test_forward_returns_named_stages():
    torch.manual_seed(0)
    model = tiny_model().train()
    out = model(torch.randn(4, 4, 3, 128, 64), MODALITIES, labels=torch.tensor([0, 0, 1, 1]))
    assert out["frames"].shape == (4, 4, 128)
    for key in ("stfl", "sd", "cmi", "embedding"):
        assert out[key].shape == (4, 128)
    assert out["logits"].shape == (4, 8)
    assert out["sd_attention"].shape == (4, 8)
    assert torch.allclose(out["sd_attention"].sum(-1), torch.ones(4), atol=1e-5)
    assert out["cmi_attention"].shape == (4, 8)
    # the memory only knows identities 0 and 1 so far: attention stays on them
    assert out["cmi_attention"][:, 2:].abs().max() == 0


@pytest.mark.parametrize("switch", ["sd", "cmi"])
def test_switches_remove_their_module(switch):
    torch.manual_seed(0)
    full = tiny_model()
    ablated = tiny_model(**{switch: False})
    module = {"sd": "semantic_diffusion", "cmi": "cross_modal"}[switch]
    assert getattr(full, module) is not None and getattr(ablated, module) is None
    removed = sum(p.numel() for p in getattr(full, module).parameters())
    assert sum(p.numel() for p in full.parameters()) - sum(p.numel() for p in ablated.parameters()) == removed
    out = ablated.eval()(torch.randn(2, 4, 3, 128, 64), MODALITIES[:2])
    before = {"sd": "stfl", "cmi": "sd"}[switch]
    assert torch.equal(out[switch], out[before])
    assert out[f"{switch}_attention"] is None


def test_baseline_is_frame_mean_of_clip_class_tokens():
    torch.manual_seed(0)
    baseline = LSMRL(tiny_config(grouped=False, shift=False, sd=False, cmi=False, modality_losses=False)).eval()
    assert baseline.config.is_baseline
    frames = torch.randn(2, 4, 3, 128, 64)
    with torch.no_grad():
        out = baseline(frames, MODALITIES[:2])
        reference = baseline.clip.visual(frames.flatten(0, 1)).reshape(2, 4, -1).mean(1)
    assert torch.allclose(out["stfl"], reference, atol=1e-5)
    assert torch.equal(out["cmi"], out["stfl"])


def test_sd_and_cmi_change_features_once_trained_state_exists():
    torch.manual_seed(0)
    model = tiny_model().train()
    frames = torch.randn(4, 4, 3, 128, 64)
    model(frames, MODALITIES, labels=torch.tensor([0, 0, 1, 1]))  # fills the CMI memory
    out = model.eval()(frames, MODALITIES)
    assert not torch.allclose(out["sd"], out["stfl"])
    assert not torch.allclose(out["cmi"], out["sd"])


def test_sd_needs_a_prompt_bank():
    model = LSMRL(tiny_config())  # bank never filled
    with pytest.raises(RuntimeError, match="prompt bank"):
        model.eval()(torch.randn(1, 2, 3, 128, 64), ["visible"])


def test_checkpoint_round_trip_without_dataset(tmp_path):
    torch.manual_seed(0)
    model = tiny_model().train()
    frames = torch.randn(4, 4, 3, 128, 64)
    model(frames, MODALITIES, labels=torch.tensor([0, 0, 1, 1]))
    model.eval()
    path = save_checkpoint(model, tmp_path / "m.safetensors", metrics={"x": 1})
    loaded, meta = load_model(path)
    assert meta["metrics"] == {"x": 1}
    with torch.no_grad():
        assert torch.equal(loaded(frames, MODALITIES)["embedding"], model(frames, MODALITIES)["embedding"])


def test_checkpoint_mismatch_and_bad_files_are_refused(tmp_path):
    model = tiny_model()
    path = save_checkpoint(model, tmp_path / "m.safetensors")
    meta = json.loads(sidecar_path(path).read_text())
    meta["model_config"]["num_classes"] = 9
    sidecar_path(path).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not match the model config"):
        load_model(path)
    pickle_file = tmp_path / "m.pt"
    torch.save({"a": torch.zeros(1)}, pickle_file)
    with pytest.raises(CheckpointError, match="not a .safetensors"):
        load_model(pickle_file)
    garbage = tmp_path / "g.safetensors"
    garbage.write_bytes(b"not safetensors at all")
    sidecar_path(garbage).write_text(sidecar_path(path).read_text())
    with pytest.raises(CheckpointError, match="not a valid safetensors"):
        load_model(garbage)
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "missing.safetensors")


def test_clip_weights_from_local_file_strict_and_resized(tmp_path, clip):
    from safetensors.torch import save_file

    weights = tmp_path / "clip.safetensors"
    save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, str(weights))
    again = build_clip(BackboneConfig(), weights=weights)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), clip.state_dict().values()))
    # square-grid weights (64x64 -> 8x8 patches) resized onto the 16x8 grid of 128x64 frames
    square = build_clip(BackboneConfig(image_size=(64, 64)))
    square_file = tmp_path / "square.safetensors"
    save_file({k: v.contiguous() for k, v in square.state_dict().items()}, str(square_file))
    resized = build_clip(BackboneConfig(), weights=square_file)
    assert resized.visual.positional_embedding.shape == (129, 192)
    # mismatching keys are named
    state = {k: v.contiguous() for k, v in clip.state_dict().items()}
    state.pop("visual.proj")
    state["text_projection"] = torch.zeros(3, 3)
    broken = tmp_path / "broken.safetensors"
    save_file(state, str(broken))
    with pytest.raises(CheckpointError) as error:
        load_clip_weights(build_clip(BackboneConfig()), broken)
    assert "visual.proj" in str(error.value) and "text_projection" in str(error.value)
    with pytest.raises(CheckpointError, match="not found"):
        build_clip(BackboneConfig(), weights=tmp_path / "nope.safetensors")


def test_vit_b16_runs_on_two_tracklets_of_eight_frames():
    torch.manual_seed(0)
    clip = build_clip(BackboneConfig("ViT-B-16", (256, 128))).eval()
    stfl = STFL(clip.visual, STFLConfig())
    assert stfl.block_kinds() == ["basic"] * 8 + ["grouped"] * 2 + ["shift"] * 2
    with torch.no_grad():
        out = stfl(torch.randn(2, 8, 3, 256, 128))
    assert out["frame_features"].shape == (2, 8, 512)
    assert torch.isfinite(out["sequence"]).all()
