"""What a run hands its plug-ins (recipes, ensemble strategies): facts about the run and services that
only the run can carry out, as small typed objects. A plug-in works with these and imports nothing from
the layers that run it (build, module, run/, trainer, sweep); see docs/architecture.md.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor, nn


class DataView(Protocol):
    """The run's data as a plug-in sees it (the data module is one): shapes, and whole splits as tensors."""

    @property
    def input_shape(self) -> tuple[int, int, int]: ...  # (C, H, W)

    @property
    def num_classes(self) -> int: ...

    @property
    def batch_size(self) -> int: ...

    @property
    def augments(self) -> bool:
        """Whether training batches are augmented (drawn anew every epoch)."""
        ...

    def split_tensors(self, split: str) -> tuple[Tensor, Tensor]:
        """All images and labels of ``split`` ("train", "val" or "test") as they are fed to the network,
        unsharded and without augmentation. The images may be a view that normalises as it is read
        (archfuse.data.batches.SplitImages): ``len(x)``, ``x[a:b]``, ``x[index]`` and ``x.split(n)`` give
        float tensors; ``x[:]`` the whole split at once."""
        ...

    def sample_indices(self, split: str) -> Tensor:
        """The indices that batches of ``split`` carry as their third element (``uses_sample_index``)."""
        ...


@dataclass(frozen=True)
class RunContext:
    """Facts of one run and the services a plug-in may call, handed to a recipe's ``setup``."""

    input_shape: tuple[int, int, int]
    num_classes: int
    seed: int  # the run's seed
    epochs: int  # epochs of the run's fit
    data: DataView
    # make_optimizer(params) -> the run's optimizer (its class and options) over ``params``
    make_optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
    # load_network(path, key) -> the trained network of any archfuse checkpoint; errors name ``key``
    load_network: Callable[[str, str], nn.Module]
