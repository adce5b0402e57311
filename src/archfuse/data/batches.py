"""Whole batches cut from a set's stored images: one indexing op per batch, no per-sample work."""

import math
from collections.abc import Callable, Iterator

import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler


class TensorBatches(Dataset):
    """Indexed by a tensor of indices; returns the whole batch at once: (images, labels), and with
    ``with_index`` the samples' indices too (for a recipe or ensemble that keeps per-sample state).
    The images come as stored (uint8 for bytes); the data module normalises them on the batch's device."""

    def __init__(self, x, y: Tensor, with_index: bool = False):
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


class SplitImages:
    """A whole split's images as the network takes them, normalised on demand: indexing (a slice, an
    index tensor) or ``split(n)`` returns float tensors of just those images, so no float copy of the
    whole split is ever kept; ``x[:]`` makes one when a caller wants it."""

    def __init__(self, storage, indices: Tensor, normalise: Callable[[Tensor], Tensor]):
        self.storage, self.indices, self.normalise = storage, indices, normalise
        self.shape = torch.Size((len(indices), *tuple(storage.shape)[1:]))
        self.dtype = torch.float32

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key) -> Tensor:
        index = self.indices[key]
        if index.ndim == 0:
            return self.normalise(self.storage[index.reshape(1)])[0]
        return self.normalise(self.storage[index])

    def split(self, size: int) -> Iterator[Tensor]:
        """Consecutive chunks of ``size`` images, as Tensor.split cuts a tensor."""
        for start in range(0, len(self), size):
            yield self[start:start + size]

    def __iter__(self) -> Iterator[Tensor]:
        for chunk in self.split(512):
            yield from chunk
