"""Walks through a fixed set in batches, reshuffled every epoch: the data order of code that
iterates a shuffled DataLoader (Welfert et al. 2023's ring study walks its 50,000 points and a
fixed set of 50,000 latent vectors so, each reshuffled independently every epoch).

The default draws each batch uniformly with replacement (`GANTraining._indices`). A walk
takes floor(n / B) full batches per epoch (the reshuffled remainder goes unused that epoch,
where a DataLoader would hand out one smaller batch: a step's shapes stay fixed), and an
epoch's permutation is a function of the member's seed, the walk's name and the epoch alone,
so the step keeps no state of it: a resumed run walks on from its step count, and a member's
walk never depends on its population.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch import Tensor


def _epoch_seed(seed: int, name: str, epoch: int) -> int:
    text = f"{seed}:{name}:{epoch}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") >> 1  # a torch seed


class EpochWalk:
    """For each member (by its trial's seed), the B indices into n items that step `step`
    takes."""

    def __init__(self, seeds: Sequence[int], n: int, batch: int, name: str, device) -> None:
        if n < batch:
            raise ValueError(f"a walk needs at least one batch: {n} items, batch {batch}")
        self.seeds, self.n, self.batch, self.name = list(seeds), n, batch, name
        self.batches = n // batch  # per epoch
        self.device = device
        self._epoch: int | None = None
        self._orders: list[Tensor] = []

    def indices(self, member: int, step: int) -> Tensor:
        epoch, position = divmod(step, self.batches)
        if epoch != self._epoch:
            self._orders = [self.permutation(seed, epoch) for seed in self.seeds]
            self._epoch = epoch
        start = position * self.batch
        return self._orders[member][start : start + self.batch]

    def permutation(self, seed: int, epoch: int) -> Tensor:
        generator = torch.Generator().manual_seed(_epoch_seed(seed, self.name, epoch))
        return torch.randperm(self.n, generator=generator).to(self.device)


class PerMember:
    """A draw that is a function of the member and the step, not of the member's random
    stream (`MemberStreams.draw` calls it with the member's index): how a walk's batch goes
    through the draws, so that a compiled step takes it as an input like any draw."""

    def __init__(self, sample) -> None:
        self.sample = sample

    def __call__(self, member: int) -> Tensor:
        return self.sample(member)
