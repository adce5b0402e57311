"""Normalisation per channel with the training pool's statistics, applied batch by batch.

Images stay in their stored form (uint8 for bytes, float in [0, 1] otherwise) and become
``(x / 255 - mean) / std`` in float32 on the batch's own device, with the same elementwise operations
in the same order as normalising the whole set up front: the numbers are the same, bit for bit.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from archfuse.data.storage import rows

CHUNK_PIXELS = 1 << 24  # images per pass of the statistics: about 16 M pixels at a time


@dataclass(frozen=True)
class Normaliser:
    """``mean`` and ``std`` (C,) of the pool on the [0, 1] pixel scale, float32."""

    mean: Tensor
    std: Tensor

    @property
    def blank(self) -> Tensor:
        """A blank (zero) pixel after normalisation, shaped (1, C, 1, 1)."""
        return (-self.mean / self.std).reshape(1, -1, 1, 1)

    def __call__(self, x: Tensor) -> Tensor:
        """(N, C, H, W) images as the network takes them, on ``x``'s device."""
        mean = self.mean.to(x.device).reshape(1, -1, 1, 1)
        std = self.std.to(x.device).reshape(1, -1, 1, 1)
        if x.dtype == torch.uint8:
            # A tensor divisor, not a Python number: CUDA turns division by a scalar into multiplication
            # by its reciprocal, which can differ from the division in the last bit.
            x = x.float().div_(torch.tensor(255.0, device=x.device))
            return x.sub_(mean).div_(std)
        return (x - mean) / std


def pool_normaliser(x_pool) -> Normaliser:
    """The per-channel mean and (sample) std of the pool. uint8 images: exact, from a histogram of each
    channel's 256 values, read in chunks (never a float copy of the set); float images: torch's own."""
    if x_pool.dtype != torch.uint8:
        mean = x_pool.mean(dim=(0, 2, 3))
        std = x_pool.std(dim=(0, 2, 3)).clamp_min(1e-6)
        return Normaliser(mean, std)
    n, c = len(x_pool), x_pool.shape[1]
    counts = np.zeros((c, 256), dtype=np.int64)
    step = max(1, CHUNK_PIXELS // max(1, int(np.prod(x_pool.shape[1:]))))
    for start in range(0, n, step):
        chunk = rows(x_pool, start, start + step).numpy()
        for ch in range(c):
            counts[ch] += np.bincount(chunk[:, ch].ravel(), minlength=256)
    # The float32 values x / 255 the network would see, summed exactly in float64.
    values = (torch.arange(256, dtype=torch.float32) / 255.0).double().numpy()
    total = counts.sum(axis=1)
    mean = (counts * values).sum(axis=1) / total
    var = (counts * (values[None, :] - mean[:, None]) ** 2).sum(axis=1) / np.maximum(total - 1, 1)
    std = torch.from_numpy(np.sqrt(var)).float().clamp_min(1e-6)
    return Normaliser(torch.from_numpy(mean).float(), std)
