"""Frame sampling modes, the frame transform, tracklet loading and the cross-modal identity sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lsmrl.data import (
    CLIP_MEAN,
    CLIP_STD,
    INFRARED,
    VISIBLE,
    CrossModalIdentitySampler,
    Tracklet,
    build_transform,
    load_tracklet,
    sample_frame_indices,
)
from lsmrl.errors import VideoError


# --------------------------------------------------------------------------- indices
def test_evenly_is_mitml_test_sampling():
    assert sample_frame_indices(24, 6, "evenly").tolist() == [0, 4, 8, 12, 16, 20]
    # ceil(13/6)=3 frames a chunk, the last chunk padded with the last frame (MITML video_test)
    assert sample_frame_indices(13, 6, "evenly").tolist() == [0, 3, 6, 9, 12, 12]
    assert sample_frame_indices(12, 6, "evenly").tolist() == [0, 2, 4, 6, 8, 10]
    # fewer frames than samples: frames repeated in temporal order
    assert sample_frame_indices(3, 6, "evenly").tolist() == [0, 0, 1, 1, 2, 2]
    assert sample_frame_indices(1, 4, "evenly").tolist() == [0, 0, 0, 0]


def test_uniform_is_buptcampus_test_sampling():
    expected = np.linspace(0, 111, 10, endpoint=False, dtype=int)
    assert sample_frame_indices(111, 10, "uniform").tolist() == expected.tolist()
    assert sample_frame_indices(5, 10, "uniform").tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]


def test_restricted_random_one_per_chunk_and_reproducible():
    draws = [sample_frame_indices(24, 6, "restricted_random", np.random.default_rng(seed)) for seed in range(20)]
    for indices in draws:
        assert indices.shape == (6,)
        assert all(4 * i <= index < 4 * (i + 1) for i, index in enumerate(indices.tolist()))
    again = sample_frame_indices(24, 6, "restricted_random", np.random.default_rng(3))
    assert again.tolist() == draws[3].tolist()
    assert len({tuple(d.tolist()) for d in draws}) > 1
    short = sample_frame_indices(4, 6, "restricted_random", np.random.default_rng(0))
    assert short.tolist() == [0, 0, 1, 2, 2, 3]
    with pytest.raises(ValueError, match="needs an rng"):
        sample_frame_indices(24, 6, "restricted_random")


def test_consecutive_all_and_errors():
    assert sample_frame_indices(10, 4, "consecutive").tolist() == [3, 4, 5, 6]
    run = sample_frame_indices(30, 5, "consecutive", np.random.default_rng(1))
    assert np.all(np.diff(run) == 1) and 0 <= run[0] <= 25
    assert sample_frame_indices(7, 3, "all").tolist() == list(range(7))
    with pytest.raises(ValueError, match="unknown sampling mode"):
        sample_frame_indices(10, 4, "dense")
    with pytest.raises(ValueError, match="at least 1 frame"):
        sample_frame_indices(0, 4, "evenly")


# --------------------------------------------------------------------------- transforms
def test_transform_shape_and_clip_normalisation():
    transform = build_transform(image_size=(32, 16), train=False)
    grey = [Image.new("RGB", (20, 40), (128, 128, 128)) for _ in range(3)] + [np.full((50, 30, 3), 128, np.uint8)]
    out = transform(grey)
    assert out.shape == (4, 3, 32, 16) and out.dtype == torch.float32
    expected = (128 / 255 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    assert torch.allclose(out.mean(dim=(0, 2, 3)), expected, atol=1e-4)
    assert torch.allclose(out[:, 0], torch.full_like(out[:, 0], float(expected[0])), atol=1e-4)


def test_train_transform_is_consistent_across_frames_and_seeded():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 16, 3), dtype=np.uint8)
    frames = [image] * 5
    transform = build_transform(image_size=(32, 16), train=True, erase_prob=1.0)
    out = transform(frames, generator=torch.Generator().manual_seed(7))
    assert out.shape == (5, 3, 32, 16)
    assert all(torch.equal(out[0], out[t]) for t in range(1, 5))  # the same flip/crop/erase on every frame
    again = transform(frames, generator=torch.Generator().manual_seed(7))
    assert torch.equal(out, again)
    outputs = {transform(frames, generator=torch.Generator().manual_seed(s)).sum().item() for s in range(6)}
    assert len(outputs) > 1
    plain = build_transform(image_size=(32, 16), train=False)(frames)
    assert not torch.equal(out, plain)


# --------------------------------------------------------------------------- loading
def test_load_tracklet_reads_frames_in_order(tmp_path):
    paths = []
    for i in range(12):
        path = tmp_path / f"{i + 1}.png"
        size = (8, 16) if i != 5 else (10, 20)  # one frame of another size is resized
        Image.new("RGB", size, (i * 20, 0, 255 - i * 20)).save(path)
        paths.append(str(path))
    tracklet = Tracklet(pid=1, camid=1, modality=VISIBLE, frames=tuple(paths), tid="t")
    frames = load_tracklet(tracklet, 6, "evenly")
    assert frames.shape == (6, 16, 8, 3) and frames.dtype == np.uint8
    assert frames[:, 0, 0, 0].tolist() == [0, 40, 80, 120, 160, 200]
    sized = load_tracklet(tracklet, 3, "uniform", size=(4, 2))
    assert sized.shape == (3, 4, 2, 3)

    broken = Tracklet(pid=1, camid=1, modality=VISIBLE, frames=(str(tmp_path / "gone.png"),), tid="b")
    with pytest.raises(VideoError, match="frame file not found"):
        load_tracklet(broken, 2)


# --------------------------------------------------------------------------- sampler
def _train_set() -> list[Tracklet]:
    tracklets = []
    layout = {1: (5, 4), 2: (3, 6), 3: (2, 2), 4: (1, 3), 5: (4, 0)}  # pid -> (#visible, #infrared); 5 has no IR
    for pid, (num_visible, num_infrared) in layout.items():
        for modality, count in ((VISIBLE, num_visible), (INFRARED, num_infrared)):
            for k in range(count):
                tracklets.append(Tracklet(pid=pid, camid=k, modality=modality, frames=("x.jpg",), tid=f"{pid}/{modality}/{k}"))
    return tracklets


def test_cross_modal_sampler_batches():
    tracklets = _train_set()
    sampler = CrossModalIdentitySampler(tracklets, identities_per_batch=2, tracklets_per_modality=3, seed=0,
                                        batches_per_epoch=8)
    assert sampler.num_skipped_identities == 1 and sampler.skipped_pids == [5]
    batches = list(sampler)
    assert len(batches) == len(sampler) == 8
    seen = set()
    for batch in batches:
        assert len(batch) == 2 * 2 * 3
        blocks = [batch[i : i + 6] for i in range(0, 12, 6)]
        pids = [tracklets[block[0]].pid for block in blocks]
        assert len(set(pids)) == 2 and 5 not in pids
        for pid, block in zip(pids, blocks):
            assert all(tracklets[i].pid == pid for i in block)
            assert [tracklets[i].modality for i in block] == [VISIBLE] * 3 + [INFRARED] * 3
            if pid == 1:  # enough tracklets: drawn without replacement
                assert len(set(block[:3])) == 3 and len(set(block[3:])) == 3
        seen.update(pids)
    assert seen == {1, 2, 3, 4}

    same = CrossModalIdentitySampler(tracklets, 2, 3, seed=0, batches_per_epoch=8)
    assert list(same) == batches
    same.set_epoch(1)
    assert list(same) != batches
    assert list(CrossModalIdentitySampler(tracklets, 2, 3, seed=1, batches_per_epoch=8)) != batches


def test_cross_modal_sampler_ddp_split_and_errors():
    tracklets = _train_set()
    full = CrossModalIdentitySampler(tracklets, 2, 2, seed=4, epoch=2, batches_per_epoch=7)
    ranks = [CrossModalIdentitySampler(tracklets, 2, 2, seed=4, epoch=2, batches_per_epoch=7, rank=r, world_size=2)
             for r in range(2)]
    assert [len(r) for r in ranks] == [3, 3]
    all_batches = full.epoch_batches()
    assert list(ranks[0]) == all_batches[0:6:2] and list(ranks[1]) == all_batches[1:6:2]
    default = CrossModalIdentitySampler(tracklets, 2, 2)
    assert len(default) == 15 // (2 * 2)  # max(#visible=11, #infrared=15) // (P * K)
    with pytest.raises(ValueError, match="only 4 identities"):
        CrossModalIdentitySampler(tracklets, identities_per_batch=5, tracklets_per_modality=1)
