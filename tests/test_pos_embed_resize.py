"""CLIP weights trained at one person-crop size load into a model of another (rectangular grids)."""

from __future__ import annotations

import torch
from safetensors.torch import save_file

from lsmrl.model.backbone import BackboneConfig, _grid_with_aspect, build_clip, load_clip_weights, resize_grid_pos_embed


def test_grid_with_aspect_and_identity_resize():
    assert _grid_with_aspect(32, (16, 8)) == (8, 4)
    assert _grid_with_aspect(18, (16, 8)) == (6, 3)
    assert _grid_with_aspect(30, (16, 8)) is None
    pos = torch.randn(1 + 32, 7)
    assert torch.allclose(resize_grid_pos_embed(pos, (8, 4), (8, 4)), pos, atol=1e-5)


def test_rectangular_weights_load_into_a_larger_grid(tmp_path):
    small = build_clip(BackboneConfig("lsmrl-mini", (64, 32)))
    path = tmp_path / "clip.safetensors"
    save_file({k: v.contiguous() for k, v in small.state_dict().items()}, str(path))
    large = build_clip(BackboneConfig("lsmrl-mini", (128, 64)))
    load_clip_weights(large, path)
    pos_small = small.visual.positional_embedding.detach()
    pos_large = large.visual.positional_embedding.detach()
    assert pos_large.shape[0] == 1 + 16 * 8
    assert torch.equal(pos_large[0], pos_small[0])  # the class token's embedding is kept
    # a smooth upsampling: the mean over the grid is nearly preserved, every other weight is copied exactly
    assert torch.allclose(pos_large[1:].mean(0), pos_small[1:].mean(0), atol=0.05 * pos_small.abs().max().item())
    assert torch.equal(large.visual.conv1.weight, small.visual.conv1.weight)
