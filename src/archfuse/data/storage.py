"""Where a data set's images lie: a tensor in memory, or a uint8 ``.npy`` file read through np.memmap.

Either is indexed by a tensor of sample indices and returns those images as a new tensor, in the
stored dtype (uint8 for images that are bytes by nature); nothing here converts to float.
"""

from pathlib import Path

import numpy as np
import torch
from torch import Tensor


class MemmapImages:
    """A (N, C, H, W) uint8 array in a ``.npy`` file, read page by page as batches need it.

    Pickles as its path (a DataLoader worker opens the file itself), so no worker copies the set.
    """

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._array: np.ndarray | None = None
        self.shape = tuple(self.array.shape)
        self.dtype = torch.uint8

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r")
        return self._array

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Tensor | int | slice) -> Tensor:
        if isinstance(index, slice):
            return torch.from_numpy(np.array(self.array[index]))
        index = torch.as_tensor(index)
        if index.ndim == 0:
            return torch.from_numpy(np.array(self.array[int(index)]))
        # Read in file order (fewer seeks), hand back in the order asked for.
        order = torch.argsort(index)
        rows = torch.from_numpy(self.array[index[order].numpy()])
        out = torch.empty_like(rows)
        out[order] = rows
        return out

    def __getstate__(self) -> dict:
        return {"path": self.path, "shape": self.shape}

    def __setstate__(self, state: dict) -> None:
        self.path, self.shape, self._array, self.dtype = state["path"], state["shape"], None, torch.uint8


class IndexedImages:
    """The images ``index`` of ``storage`` (a split of a set held once), without copying them."""

    def __init__(self, storage, index: Tensor):
        self.storage, self.index = storage, index
        self.shape = (len(index), *tuple(storage.shape)[1:])
        self.dtype = storage.dtype

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, index: Tensor | int | slice) -> Tensor:
        return self.storage[self.index[index]]


def rows(storage, start: int, stop: int) -> Tensor:
    """Images ``start:stop`` of any storage, as a tensor."""
    if isinstance(storage, Tensor):
        return storage[start:stop]
    return storage[torch.arange(start, min(stop, len(storage)))]


def nbytes(storage) -> int:
    return int(np.prod(storage.shape)) * (storage.element_size() if isinstance(storage, Tensor) else 1)
