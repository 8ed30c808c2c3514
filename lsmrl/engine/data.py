"""Torch datasets and loaders over :class:`~lsmrl.data.Tracklet` lists.

Every random choice (which frames, which augmentation) is drawn from a seed that
travels with the index, so a run is repeatable whatever the number of workers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from lsmrl.data.frame_indices import sample_frame_indices
from lsmrl.data.samplers import CrossModalIdentitySampler
from lsmrl.data.sampling import build_transform, load_tracklet
from lsmrl.data.tracklet import INFRARED, Tracklet
from lsmrl.engine.frame_bank import FrameBank
from lsmrl.model.cross_modal import INFRARED_ID, VISIBLE_ID


def label_map(tracklets: Sequence[Tracklet]) -> dict[int, int]:
    """Identity -> training label 0..C-1 (sorted identities: deterministic)."""
    return {pid: label for label, pid in enumerate(sorted({t.pid for t in tracklets}))}


def modality_id(tracklet: Tracklet) -> int:
    return INFRARED_ID if tracklet.modality == INFRARED else VISIBLE_ID


def to_grayscale(frames: np.ndarray) -> np.ndarray:
    """(T,H,W,3) uint8 -> the same frames in grey (ITU-R 601 luma) on 3 channels, like infrared frames.

    Random grayscale of visible training frames is a common VI-ReID augmentation: it takes the
    colour cue away, so the model must also learn the shape cues that infrared frames keep.
    """
    luma = frames[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.repeat(np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None], 3, axis=-1)


def to_single_channel(frames: np.ndarray, channel: int) -> np.ndarray:
    """(T,H,W,3) uint8 -> channel ``channel`` (0 R, 1 G, 2 B) replicated on 3 channels.

    The channel-exchangeable augmentation of CAJ (Ye et al., ICCV 2021): an infrared camera's grey level
    bears no fixed relation to colour, so training on random single channels (not only on luma) keeps the
    visible features from hanging on one colour-to-grey mapping.
    """
    return np.repeat(frames[..., channel : channel + 1], 3, axis=-1)


class TrackletClips(Dataset):
    """Items ``(index, seed)`` -> dict(frames (T,3,H,W), label, modality, camid, index)."""

    def __init__(self, tracklets: Sequence[Tracklet], num_frames: int, image_size: tuple[int, int],
                 train: bool, sampling: str = "evenly", labels: dict[int, int] | None = None,
                 flip_prob: float = 0.5, padding: int = 4, erase_prob: float = 0.0,
                 visible_grayscale_prob: float = 0.0, visible_channel_prob: float = 0.0,
                 bank: FrameBank | None = None):
        self.tracklets = list(tracklets)
        if bank is not None and (len(bank) != len(self.tracklets) or bank.image_size != tuple(image_size)):
            raise ValueError("the frame bank must hold these tracklets at this image size")
        self.bank = bank  # frames decoded once (same frames, same draws; uint8 rounding after the resize)
        self.visible_grayscale_prob = visible_grayscale_prob if train else 0.0
        self.visible_channel_prob = visible_channel_prob if train else 0.0
        self.num_frames = num_frames
        self.train = train
        self.sampling = "restricted_random" if train else sampling
        self.labels = labels
        self.transform = build_transform(tuple(image_size), train=train, flip_prob=flip_prob,
                                         padding=padding, erase_prob=erase_prob)

    def __len__(self) -> int:
        return len(self.tracklets)

    def __getitem__(self, item) -> dict:
        index, seed = item if isinstance(item, tuple) else (item, item)
        tracklet = self.tracklets[index]
        rng = np.random.default_rng(seed)
        generator = torch.Generator().manual_seed(int(seed) % (2**63))
        if self.bank is not None:
            stack = self.bank.frames[index]
            indices = sample_frame_indices(len(stack), self.num_frames, self.sampling, rng if self.train else None)
            frames = stack[torch.from_numpy(indices)].permute(0, 2, 3, 1).numpy()
        else:
            frames = load_tracklet(tracklet, self.num_frames, self.sampling, rng if self.train else None)
        if tracklet.modality != INFRARED and (self.visible_grayscale_prob or self.visible_channel_prob):
            # one draw decides grey (luma), a single channel, or colour; the whole tracklet alike
            draw = rng.random()
            if draw < self.visible_grayscale_prob:
                frames = to_grayscale(frames)
            elif draw < self.visible_grayscale_prob + self.visible_channel_prob:
                frames = to_single_channel(frames, int(rng.integers(3)))
        return {
            "frames": self.transform(list(frames), generator=generator),
            "label": self.labels.get(tracklet.pid, -1) if self.labels else -1,
            "modality": modality_id(tracklet),
            "camid": tracklet.camid,
            "index": index,
        }


class SeededBatches(Sampler):
    """Wraps a batch sampler of indices into batches of ``(index, seed)`` items."""

    def __init__(self, batch_sampler, seed: int):
        self.batch_sampler = batch_sampler
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.batch_sampler, "set_epoch"):
            self.batch_sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for number, batch in enumerate(self.batch_sampler):
            base = np.random.SeedSequence([self.seed, self.epoch, number]).generate_state(len(batch))
            yield [(int(i), int(s)) for i, s in zip(batch, base)]

    def __len__(self) -> int:
        return len(self.batch_sampler)


def collate(items: list[dict]) -> dict:
    return {
        "frames": torch.stack([item["frames"] for item in items]),
        "labels": torch.tensor([item["label"] for item in items], dtype=torch.long),
        "modalities": torch.tensor([item["modality"] for item in items], dtype=torch.long),
        "camids": torch.tensor([item["camid"] for item in items], dtype=torch.long),
        "indices": torch.tensor([item["index"] for item in items], dtype=torch.long),
    }


def train_loader(tracklets: Sequence[Tracklet], labels: dict[int, int], image_size, data_config,
                 seed: int, rank: int = 0, world_size: int = 1, num_frames: int = 6,
                 bank: FrameBank | None = None) -> DataLoader:
    """Cross-modal identity batches: P identities x K visible + K infrared tracklets each, ``num_frames`` each."""
    clips = TrackletClips(tracklets, num_frames, image_size, train=True, labels=labels,
                          flip_prob=data_config.flip_prob, padding=data_config.padding,
                          erase_prob=data_config.erase_prob,
                          visible_grayscale_prob=data_config.visible_grayscale_prob,
                          visible_channel_prob=data_config.visible_channel_prob, bank=bank)
    sampler = CrossModalIdentitySampler(list(tracklets), data_config.identities_per_batch,
                                        data_config.tracklets_per_modality, seed=seed,
                                        rank=rank, world_size=world_size)
    return DataLoader(clips, batch_sampler=SeededBatches(sampler, seed), collate_fn=collate,
                      num_workers=data_config.workers)


def eval_loader(tracklets: Sequence[Tracklet], num_frames: int, image_size, sampling: str,
                batch_size: int = 16, workers: int = 0, labels: dict[int, int] | None = None) -> DataLoader:
    clips = TrackletClips(tracklets, num_frames, image_size, train=False, sampling=sampling, labels=labels)
    return DataLoader(clips, batch_size=batch_size, shuffle=False, collate_fn=collate, num_workers=workers)
