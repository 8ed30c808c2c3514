"""Fused attention (SDPA) in the visual tower and the bf16 inference copy of its weights."""

from __future__ import annotations

import threading
from collections import OrderedDict

import pytest
import torch
from open_clip.transformer import QuickGELU
from torch import nn

from lsmrl.engine.extract import inference_autocast
from lsmrl.model.attention import SDPAttention, use_sdpa
from lsmrl.model.backbone import BackboneConfig, build_clip
from lsmrl.model.fused import FusedMLP, fused_linear
from lsmrl.model.stfl import STFL, STFLConfig, bf16_copy, bf16_weights
from tests.helpers import tiny_model

MODALITIES = ["visible", "infrared"]


def _attention_pair(heads: int = 3, width: int = 192) -> tuple[nn.MultiheadAttention, SDPAttention]:
    torch.manual_seed(0)
    reference = nn.MultiheadAttention(width, heads, batch_first=True).eval()
    with torch.no_grad():  # non-zero biases, so that a dropped bias would show
        reference.in_proj_bias.normal_()
        reference.out_proj.bias.normal_()
    ours = nn.MultiheadAttention(width, heads, batch_first=True).eval()
    ours.load_state_dict(reference.state_dict())
    return reference, use_sdpa(ours)


@pytest.fixture(scope="module")
def clip():
    torch.manual_seed(0)
    return build_clip(BackboneConfig()).eval()


def _plain_attention(visual: nn.Module) -> None:
    """Undo :func:`use_sdpa`: the tower's attention back to nn.MultiheadAttention's own forward."""
    for module in visual.modules():
        if type(module) is SDPAttention:
            module.__class__ = nn.MultiheadAttention


# ----------------------------------------------------------------------------- SDPA
@pytest.mark.parametrize("grad", [False, True])
def test_sdpa_equals_the_explicit_attention_path(grad):
    """The SDPA path against nn.MultiheadAttention computing softmax(QK^T/sqrt(d))V explicitly (weights asked for,
    which never takes a fused kernel), with and without autograd."""
    reference, ours = _attention_pair()
    x = torch.randn(4, 33, 192, generator=torch.Generator().manual_seed(1))
    with torch.set_grad_enabled(grad):
        expected, weights = reference(x, x, x, need_weights=True, average_attn_weights=False)
        out, none = ours(x, x, x, need_weights=False)
    assert none is None and weights.shape == (4, 3, 33, 33)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    if grad:  # the gradients flow through SDPA to the packed projection as through the reference
        (g_ref,) = torch.autograd.grad(expected.square().sum(), reference.in_proj_weight)
        (g_ours,) = torch.autograd.grad(out.square().sum(), ours.in_proj_weight)
        torch.testing.assert_close(g_ours, g_ref, rtol=1e-4, atol=1e-4)


def test_sdpa_in_bf16_stays_close_to_fp32():
    reference, ours = _attention_pair()
    x = torch.randn(4, 33, 192, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected, _ = reference(x, x, x, need_weights=False)
        out, _ = ours.to(torch.bfloat16)(x.bfloat16(), x.bfloat16(), x.bfloat16(), need_weights=False)
    assert out.dtype == torch.bfloat16
    cosine = nn.functional.cosine_similarity(out.float().flatten(0, 1), expected.flatten(0, 1), dim=-1)
    assert cosine.min().item() > 0.999, cosine.min()


def test_weights_masks_and_cross_attention_go_to_multihead_attention():
    reference, ours = _attention_pair()
    x, y = torch.randn(2, 9, 192), torch.randn(2, 5, 192)
    mask = torch.zeros(9, 9, dtype=torch.bool)
    mask[:, -2:] = True
    with torch.no_grad():
        for args, kwargs in [((x, x, x), {"need_weights": True}), ((x, y, y), {"need_weights": False}),
                             ((x, x, x), {"need_weights": False, "attn_mask": mask})]:
            expected = reference(*args, **kwargs)
            got = ours(*args, **kwargs)
            torch.testing.assert_close(got[0], expected[0], rtol=1e-5, atol=1e-5)
            assert (got[1] is None) == (expected[1] is None)
            if expected[1] is not None:
                torch.testing.assert_close(got[1], expected[1], rtol=1e-5, atol=1e-6)


def test_use_sdpa_changes_only_the_class(clip):
    before = {key: value.data_ptr() for key, value in clip.visual.state_dict().items()}
    STFL(clip.visual, STFLConfig())  # converts the tower's attention in place
    assert all(type(block.attn) is SDPAttention for block in clip.visual.transformer.resblocks)
    assert {key: value.data_ptr() for key, value in clip.visual.state_dict().items()} == before
    assert all(type(block.attn) is nn.MultiheadAttention for block in clip.transformer.resblocks)  # text: untouched


def test_stfl_with_sdpa_equals_stfl_with_plain_attention():
    """The whole STFL tower (basic, grouped and shift blocks) with SDPA against nn.MultiheadAttention."""
    torch.manual_seed(0)
    sdpa = build_clip(BackboneConfig()).visual.eval()
    plain = build_clip(BackboneConfig()).visual.eval()
    plain.load_state_dict(sdpa.state_dict())
    frames = torch.randn(2, 5, 3, 128, 64, generator=torch.Generator().manual_seed(3))
    ours = STFL(sdpa, STFLConfig())
    reference = STFL(plain, STFLConfig())
    _plain_attention(plain)
    with torch.no_grad():
        got, expected = ours(frames)["frame_features"], reference(frames)["frame_features"]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- bf16 weights
def test_bf16_copy_casts_weights_once_and_keeps_layer_norms_fp32(clip):
    tower = bf16_copy(clip.visual)
    dtypes = {name: p.dtype for name, p in tower.named_parameters()}
    norms = {name for name in dtypes if ".ln_" in name or name.startswith(("ln_pre", "ln_post"))}
    assert norms and all(dtypes[name] == torch.float32 for name in norms)
    assert all(dtype == torch.bfloat16 for name, dtype in dtypes.items() if name not in norms)
    assert not any(p.requires_grad for p in tower.parameters())
    assert all(p.dtype == torch.float32 for p in clip.visual.parameters())  # the original is untouched
    original = dict(clip.visual.named_parameters())
    for name, parameter in tower.named_parameters():
        torch.testing.assert_close(parameter.float(), original[name].detach().to(parameter.dtype).float())


def test_bf16_inference_model_gives_features_close_to_fp32():
    model = tiny_model().eval()
    frames = torch.randn(4, 6, 3, 128, 64, generator=torch.Generator().manual_seed(4))
    modalities = MODALITIES * 2
    with torch.inference_mode():
        reference = model(frames, modalities)
        with inference_autocast(model, "cpu", "bf16"):
            out = model(frames, modalities)
    assert out["frames"].dtype == torch.bfloat16 and out["embedding"].dtype == torch.float32
    for stage in ("frames", "stfl", "embedding"):
        cosine = nn.functional.cosine_similarity(out[stage].float(), reference[stage], dim=-1)
        assert cosine.min().item() > 0.999, (stage, cosine.min().item())
    assert model.stfl._bf16_cache, "the bf16 copy ran"


def test_the_bf16_copy_is_reused_and_follows_weight_updates():
    model = tiny_model().eval()
    frames = torch.randn(1, 4, 3, 128, 64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad(), bf16_weights():
        first = model.stfl.bf16_tower()
        assert model.stfl.bf16_tower() is first  # built once
        before = model.stfl(frames)["sequence"]
        with torch.no_grad():
            model.clip.visual.proj.mul_(2.0)  # an in-place update, as an optimiser step makes
        assert model.stfl.bf16_tower() is not first
        after = model.stfl(frames)["sequence"]
    torch.testing.assert_close(after.float(), 2 * before.float(), rtol=1e-2, atol=1e-2)


def test_forwards_with_gradients_or_outside_the_context_use_the_fp32_tower():
    model = tiny_model().eval()
    frames = torch.randn(1, 4, 3, 128, 64)
    with bf16_weights():
        with torch.enable_grad():  # Grad-CAM inside a bf16 region: gradients need the real weights
            out = model.stfl(frames)["sequence"]
        assert out.requires_grad and out.dtype == torch.float32
    with torch.no_grad():
        assert model.stfl(frames)["sequence"].dtype == torch.float32
    assert not model.stfl._bf16_cache


def test_bf16_weights_is_per_thread():
    model = tiny_model().eval()
    frames = torch.randn(1, 4, 3, 128, 64)
    seen = {}

    def other():
        with torch.no_grad():
            seen["dtype"] = model.stfl(frames)["sequence"].dtype

    with bf16_weights():
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        with torch.no_grad():
            assert model.stfl(frames)["sequence"].dtype == torch.bfloat16
    assert seen["dtype"] == torch.float32


# ----------------------------------------------------------------------------- fused linear
@pytest.mark.parametrize("gelu", [None, "none", "tanh"])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_linear_equals_linear_and_gelu_in_bf16(gelu, bias):
    """oneDNN's fused bias and GELU against the same maths in fp32 on the same bf16 inputs: within bf16 rounding
    of the output, as eager bf16 ``F.linear`` + ``F.gelu`` is."""
    generator = torch.Generator().manual_seed(6)
    x = torch.randn(3, 17, 64, generator=generator).bfloat16()
    weight = (0.1 * torch.randn(96, 64, generator=generator)).bfloat16()
    b = torch.randn(96, generator=generator).bfloat16() if bias else None
    reference = nn.functional.linear(x.float(), weight.float(), None if b is None else b.float())
    if gelu is not None:
        reference = nn.functional.gelu(reference, approximate=gelu)
    with torch.no_grad():
        fused = fused_linear(x, weight, b, gelu=gelu)
        eager = nn.functional.linear(x, weight, b)
        eager = eager if gelu is None else nn.functional.gelu(eager, approximate=gelu)
    assert fused.dtype == torch.bfloat16 and fused.shape == (3, 17, 96)
    tolerance = 2 * (eager.float() - reference).abs().max().item() + 1e-3
    assert (fused.float() - reference).abs().max().item() <= tolerance


def test_fused_linear_falls_back_with_gradients_and_in_fp32():
    x = torch.randn(4, 8, requires_grad=True)
    weight, bias = torch.randn(5, 8), torch.randn(5)
    out = fused_linear(x, weight, bias, gelu="none")
    torch.testing.assert_close(out, nn.functional.gelu(nn.functional.linear(x, weight, bias)))
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_fused_mlp_equals_the_open_clip_mlp(clip):
    tower = bf16_copy(clip.visual)
    block = tower.transformer.resblocks[0]
    assert isinstance(block.mlp, FusedMLP) and block.mlp.gelu == "none"
    original = clip.visual.transformer.resblocks[0].mlp
    x = torch.randn(2, 33, 192, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        reference = original(x)
        out = block.mlp(x.bfloat16())
    cosine = nn.functional.cosine_similarity(out.float().flatten(0, 1), reference.flatten(0, 1), dim=-1)
    assert cosine.min().item() > 0.999, cosine.min()
    quick = nn.Sequential(OrderedDict([("c_fc", nn.Linear(4, 8)), ("gelu", QuickGELU()), ("c_proj", nn.Linear(8, 4))]))
    assert FusedMLP.from_sequential(quick) is None  # OpenAI-format models' QuickGELU stays unfused


# ----------------------------------------------------------------------------- temporal shift
@pytest.mark.parametrize("edges", ["swap", "cyclic"])
@pytest.mark.parametrize("num_frames", [5, 6])
def test_shift_block_by_one_token_index_equals_split_shift_and_concatenate(edges, num_frames):
    """The shift block's single index_select equals the class-token split, temporal_shift and torch.cat exactly."""
    from lsmrl.model.stfl import temporal_shift, token_shift_index

    stfl = STFL(build_clip(BackboneConfig()).visual.eval(), STFLConfig(shift_edges=edges))
    length = 1 + stfl.grid[0] * stfl.grid[1]
    x = torch.randn(2, num_frames, length, 192, generator=torch.Generator().manual_seed(8))
    flat = x.reshape(2, -1, 192)
    for inverse in (False, True):
        got = flat.index_select(1, token_shift_index(num_frames, stfl.offsets, inverse, edges)).view(x.shape)
        expected = torch.cat([x[:, :, :1], temporal_shift(x[:, :, 1:], stfl.offsets, inverse, edges)], dim=2)
        assert torch.equal(got, expected)
    block = stfl.visual.transformer.resblocks[-1]
    with torch.no_grad():
        shifted = torch.cat([x[:, :, :1], temporal_shift(x[:, :, 1:], stfl.offsets, edges=edges)], dim=2)
        out = block(shifted.reshape(-1, length, 192)).reshape(x.shape)
        expected = torch.cat([out[:, :, :1], temporal_shift(out[:, :, 1:], stfl.offsets, inverse=True, edges=edges)],
                             dim=2)
        assert torch.equal(stfl._shift_block(block, x), expected)
