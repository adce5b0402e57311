"""Whole batches cut from in-memory tensors: one indexing op per batch, no per-sample work."""

import math
from collections.abc import Callable

import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler


class TensorBatches(Dataset):
    """Indexed by a tensor of indices; returns the whole batch at once: (images, labels), and with
    ``with_index`` the samples' indices too (for a recipe or ensemble that keeps per-sample state)."""

    def __init__(self, x: Tensor, y: Tensor, with_index: bool = False):
        self.x, self.y, self.with_index = x, y, with_index

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: Tensor) -> tuple[Tensor, ...]:
        return (self.x[index], self.y[index], index) if self.with_index else (self.x[index], self.y[index])


class IndexBatchSampler(Sampler[Tensor]):
    """Yields batches of indices into ``indices``, sharded over DDP ranks.

    Training (``shuffle=True``): a fresh permutation per epoch drawn from (seed, epoch), so a resumed
    run sees the same order as an uninterrupted one; shards are padded to equal length so every rank
    runs the same number of steps. Evaluation (``shuffle=False``): rank r takes every world-th
    sample, unpadded, so the ranks together cover the split exactly once.
    """

    def __init__(self, indices: Tensor, batch_size: int, shuffle: bool, seed: int = 0,
                 rank: int = 0, world_size: int = 1, epoch_source: Callable[[], int] | None = None):
        self.indices = indices
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        # The trainer's epoch counter, read at each pass: on resume Lightning builds the iterator
        # before it calls set_epoch, which would replay epoch 0's order.
        self.epoch_source = epoch_source

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _shard(self) -> Tensor:
        if not self.shuffle:
            return self.indices[self.rank :: self.world_size]
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = self.indices[torch.randperm(len(self.indices), generator=g)]
        per_rank = math.ceil(len(order) / self.world_size)
        padded = order.repeat(math.ceil(per_rank * self.world_size / max(len(order), 1)))
        return padded[: per_rank * self.world_size][self.rank :: self.world_size]

    def __iter__(self):
        if self.epoch_source is not None:
            self.epoch = self.epoch_source()
        return iter(self._shard().split(self.batch_size))

    def __len__(self) -> int:
        n = len(self.indices)
        per_rank = math.ceil(n / self.world_size) if self.shuffle else len(range(self.rank, n, self.world_size))
        return math.ceil(per_rank / self.batch_size)
