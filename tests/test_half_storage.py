"""Checkpoints stored in fp16 load into fp32 models and give the same embeddings to about 1e-3."""

from __future__ import annotations

import torch

from lsmrl.model.checkpoint import load_model, read_checkpoint_meta, save_checkpoint, store_half_precision
from tests.helpers import tiny_model


def test_half_storage_halves_the_file_and_keeps_the_model(tmp_path):
    torch.manual_seed(0)
    model = tiny_model().eval()
    path = save_checkpoint(model, tmp_path / "m.safetensors")
    frames = torch.rand(2, 4, 3, 128, 64)
    modalities = torch.tensor([0, 1])
    with torch.no_grad():
        before = model(frames, modalities)["embedding"]
    sizes = store_half_precision(path)
    assert sizes["bytes_after"] < 0.55 * sizes["bytes_before"]
    assert read_checkpoint_meta(path)["storage_dtype"] == "float16"
    loaded, _ = load_model(path)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    with torch.no_grad():
        after = loaded(frames, modalities)["embedding"]
    cosine = torch.nn.functional.cosine_similarity(before, after, dim=-1)
    assert cosine.min() > 0.999
