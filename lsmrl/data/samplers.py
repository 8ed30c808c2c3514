"""Cross-modal identity sampler: every batch has P identities x K visible + K infrared tracklets.

The VVI-ReID counterpart of torchreid's ``RandomIdentitySampler`` (MITML's
``IdentitySampler``, VLD's 4 identities x 4 tracklets per modality): the
cross-modal triplet and modality losses need, for each identity in the batch,
tracklets of *both* modalities.

- An epoch has ``batches_per_epoch`` batches (default: ``max(#visible,
  #infrared) // (P * K)``, at least 1), so one epoch sees about as many
  tracklets of the larger modality as the training set holds.
- Identities are drawn from a shuffled cycle, so each identity appears about
  equally often and never twice in one batch. For each identity, K tracklets of
  each modality are drawn without replacement, or with replacement when it has
  fewer than K.
- A batch is a flat list of ``2 * P * K`` indices into ``train_tracklets``:
  for each identity, its K visible tracklets then its K infrared tracklets.
- Identities lacking one modality are skipped (``num_skipped_identities``).
- Batches depend only on ``(seed, epoch)``; call :meth:`set_epoch` each epoch.
- DDP: with ``rank``/``world_size``, rank r takes batches ``r, r + W, ...`` of
  the epoch, truncated so every rank yields the same number of batches.

Use it as a ``batch_sampler`` of a ``torch.utils.data.DataLoader``.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from lsmrl.data.tracklet import INFRARED, VISIBLE, Tracklet


class CrossModalIdentitySampler:
    """Yields lists of indices: P identities x (K visible + K infrared) tracklets per batch."""

    def __init__(
        self,
        train_tracklets: Sequence[Tracklet],
        identities_per_batch: int = 4,
        tracklets_per_modality: int = 4,
        seed: int = 0,
        epoch: int = 0,
        *,
        batches_per_epoch: int | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if identities_per_batch < 1 or tracklets_per_modality < 1:
            raise ValueError("identities_per_batch and tracklets_per_modality must be >= 1")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank must be in 0..world_size-1, got rank={rank}, world_size={world_size}")
        self.P = int(identities_per_batch)
        self.K = int(tracklets_per_modality)
        self.seed = int(seed)
        self.epoch = int(epoch)
        self.rank = int(rank)
        self.world_size = int(world_size)

        by_pid: dict[int, dict[str, list[int]]] = {}
        for index, tracklet in enumerate(train_tracklets):
            by_pid.setdefault(tracklet.pid, {VISIBLE: [], INFRARED: []})[tracklet.modality].append(index)
        self.pids = sorted(pid for pid, groups in by_pid.items() if groups[VISIBLE] and groups[INFRARED])
        self.skipped_pids = sorted(set(by_pid) - set(self.pids))
        self.num_skipped_identities = len(self.skipped_pids)
        self._groups = {pid: (np.asarray(by_pid[pid][VISIBLE]), np.asarray(by_pid[pid][INFRARED])) for pid in self.pids}
        if len(self.pids) < self.P:
            raise ValueError(
                f"only {len(self.pids)} identities have both visible and infrared tracklets "
                f"({self.num_skipped_identities} skipped), fewer than identities_per_batch={self.P}"
            )
        if batches_per_epoch is None:
            num_visible = sum(len(v) for v, _ in self._groups.values())
            num_infrared = sum(len(i) for _, i in self._groups.values())
            batches_per_epoch = max(1, max(num_visible, num_infrared) // (self.P * self.K))
        self.batches_per_epoch = int(batches_per_epoch)
        if self.batches_per_epoch < self.world_size:
            raise ValueError(
                f"batches_per_epoch={self.batches_per_epoch} is smaller than world_size={self.world_size}"
            )

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose batches the next iteration yields (as ``DistributedSampler.set_epoch``)."""
        self.epoch = int(epoch)

    def _draw(self, rng: np.random.Generator, indices: np.ndarray) -> list[int]:
        replace = len(indices) < self.K
        return rng.choice(indices, size=self.K, replace=replace).tolist()

    def epoch_batches(self) -> list[list[int]]:
        """All batches of the current epoch (before the DDP split)."""
        rng = np.random.default_rng([self.seed, self.epoch])
        pids = np.asarray(self.pids)
        order: list[int] = []
        batches = []
        for _ in range(self.batches_per_epoch):
            if len(order) < self.P:  # refill the identity cycle with a fresh permutation
                order += rng.permutation(pids).tolist()
            chosen, rest = [], []
            for pid in order:  # P distinct identities from the front of the cycle
                (chosen if len(chosen) < self.P and pid not in chosen else rest).append(pid)
            order = rest
            batch: list[int] = []
            for pid in chosen:
                visible, infrared = self._groups[pid]
                batch += self._draw(rng, visible)
                batch += self._draw(rng, infrared)
            batches.append(batch)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.epoch_batches()
        per_rank = len(batches) // self.world_size
        yield from batches[self.rank :: self.world_size][:per_rank]

    def __len__(self) -> int:
        return self.batches_per_epoch // self.world_size

    def __repr__(self) -> str:
        return (
            f"CrossModalIdentitySampler(P={self.P}, K={self.K}, identities={len(self.pids)}, "
            f"skipped={self.num_skipped_identities}, batches={len(self)}, seed={self.seed}, epoch={self.epoch}, "
            f"rank={self.rank}/{self.world_size})"
        )
