"""DDP keeps every rank's CMI memory updates (issue 13, defect 5): 2 CPU processes on gloo.

v1 wrapped the model in DDP with buffer broadcasting, which re-sent rank 0's buffers at every forward and
overwrote the memory rows that only rank 1 had updated. Now the updates are gathered over the ranks and
DDP runs with ``broadcast_buffers=False`` (:func:`lsmrl.engine.trainer.wrap_distributed`).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lsmrl.model.cross_modal import CrossModalInteraction
from tests.helpers import tiny_model


def _features(rank: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rank 0 sees identities 0 and 1, rank 1 identities 2 and 3 (both modalities)."""
    generator = torch.Generator().manual_seed(rank)
    features = torch.randn(4, 8, generator=generator)
    labels = torch.tensor([0, 0, 1, 1]) + 2 * rank
    return features, labels, torch.tensor([0, 1, 0, 1])


def _worker(rank: int, world: int, init_file: str, results) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        # 1. the module on its own: the same update on every rank, from the union of the batches
        cmi = CrossModalInteraction(8, 4, heads=2)
        features, labels, modalities = _features(rank)
        cmi.update_memory(features, labels, modalities)
        cmi.train()
        cmi(features, modalities)  # one centre update from the global batch
        # 2. the trainer's DDP wrapping: rank 1's identities survive rank 0's next forward
        from lsmrl.engine.trainer import wrap_distributed

        torch.manual_seed(0)
        model = tiny_model(num_classes=4).train()
        network = wrap_distributed(model, torch.device("cpu"))
        frames = torch.randn(2, 2, 3, 128, 64, generator=torch.Generator().manual_seed(10 + rank))
        for _ in range(2):
            out = network(frames, torch.tensor([0, 1]), labels=torch.tensor([rank, rank]) * 2)
            out["embedding"].sum().backward()
        results[rank] = {"memory": cmi.memory.clone(), "filled": cmi.filled.clone(), "centre": cmi.centre.mean.clone(),
                         "model_filled": model.cross_modal.filled.clone(), "model_memory": model.cross_modal.memory.clone()}
    finally:
        dist.destroy_process_group()


def test_cmi_memory_updates_of_every_rank_survive_ddp(tmp_path):
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), results), nprocs=2, join=True)
    rank0, rank1 = results[0], results[1]
    expected = torch.zeros(2, 4, 8)
    for rank in (0, 1):
        features, labels, modalities = _features(rank)
        for f, label, modality in zip(features, labels, modalities):
            expected[modality, label] = f  # one tracklet per identity and modality: first sighting copies
    for result in (rank0, rank1):
        assert bool(result["filled"].all())
        assert torch.allclose(result["memory"], expected, atol=1e-6)
        # in the full model, identities 0 (rank 0) and 2 (rank 1) are in both ranks' memories
        assert result["model_filled"][:, [0, 2]].all() and not result["model_filled"][:, [1, 3]].any()
    assert torch.equal(rank0["centre"], rank1["centre"])
    assert torch.allclose(rank0["model_memory"], rank1["model_memory"], atol=1e-6)
