"""TensorDataModule: the split, normalisation, folds and loaders shared by every data set."""

from dataclasses import dataclass
from typing import Any

import torch
from lightning.pytorch import LightningDataModule
from sklearn.model_selection import StratifiedKFold, train_test_split
from torch import Tensor
from torch.utils.data import DataLoader

from archfuse.data.augment import BatchAugment
from archfuse.data.batches import IndexBatchSampler, SplitImages, TensorBatches
from archfuse.data.normalise import Normaliser, pool_normaliser
from archfuse.checks import check_count, check_number, check_positive
from archfuse.errors import ConfigError
from archfuse.randomness import epoch_seed, fit_epoch


def check_share(key: str, value: float) -> None:
    """A share of the images: a number strictly between 0 and 1."""
    check_number(key, value, 0.0, 1.0, low_open=True, high_open=True, what="between 0 and 1 (exclusive)")


# The last data set a process loaded, with its normaliser, keyed by what it was loaded from (``arrays_key``): the
# jobs of a multirun or a sweep read and normalise the same files once. One entry, so memory holds no more
# than the running job's own tensors (which are these) between jobs. The tensors are never written to.
_LOADED: dict[tuple, tuple["Arrays", Normaliser]] = {}


@dataclass
class Arrays:
    """Images of shape (N, C, H, W) with integer labels: uint8 (0..255) where the images are bytes,
    else float in [0, 1]; a tensor, or any storage of archfuse.data.storage (a memory-mapped file)."""

    x_pool: Any  # train + validation
    y_pool: Tensor
    x_test: Any
    y_test: Tensor


class TensorDataModule(LightningDataModule):
    """Subclasses give the image shape and ``load_arrays``; this class does the rest.

    The training pool (train + validation) is split with a stratified, seeded split (``seed``), or
    into stratified folds when ``fold`` is set; the test split never takes part in either. Training
    batches are drawn, and augmented (``augment``: none, shift or affine, with its strengths), from a
    stream seeded by (``shuffle_seed``, epoch, rank): the run sets ``shuffle_seed`` to its own seed, so
    a resumed run replays an uninterrupted one and every seed of a repeat sees its own stream. The
    options' values live in conf/data/<name>.yaml.

    Images stay as stored (uint8 where they are bytes); every batch is normalised with the training
    pool's per-channel mean and std on its own device (``on_after_batch_transfer``), so no float copy
    of a whole set is made.
    """

    in_channels: int = 1
    input_size: tuple[int, int] = (28, 28)
    num_classes: int = 10

    def __init__(self, *, batch_size: int, num_workers: int, val_fraction: float, train_subset: int | None,
                 seed: int, augment: str, shift: float, rotation: float, scale: float, shear: float):
        super().__init__()
        check_positive("data.batch_size", batch_size)
        check_count("data.num_workers", num_workers, 0)
        check_share("data.val_fraction", val_fraction)
        check_positive("data.train_subset", train_subset, what="a positive integer or null", none_ok=True)
        self.batch_size, self.num_workers = batch_size, num_workers
        self.val_fraction, self.train_subset, self.seed = val_fraction, train_subset, seed
        self.augment = BatchAugment(augment, shift, rotation, scale, shear)
        self.shuffle_seed = seed  # the run's seed, once the run sets it
        self._stream: tuple[int, torch.Generator] | None = None  # (epoch, generator) of the augmentation
        self.fold: tuple[int, int] | None = None  # (k, K) for cross-validation
        # Batches carry the samples' indices into the split's tensors as a third element (set by the run
        # when a recipe or ensemble strategy keeps per-sample state, e.g. a teacher's outputs).
        self.include_index = False
        self._split: dict[str, tuple[Tensor, Tensor]] | None = None

    # -- what a data set provides ------------------------------------------------------------
    def check_available(self) -> None:
        """Raise ConfigError naming the path when the files are missing (cheap; loads nothing)."""

    def load_arrays(self) -> Arrays:
        raise NotImplementedError

    def arrays_key(self) -> tuple | None:
        """What ``load_arrays`` returns depends on, as a hashable tuple, so a process loads it once;
        None (the default): it is loaded at every set-up."""
        return None

    def pool_val_fraction(self) -> float:
        """The share of the training pool held out for validation."""
        return self.val_fraction

    # -- the shared machinery ----------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.in_channels, *self.input_size)

    def pool_labels(self) -> Tensor:
        self.setup()
        return self._pool[1]

    def setup(self, stage: str | None = None) -> None:
        if self._split is not None:
            return
        arrays, self.normaliser = self._loaded_arrays()
        x_pool, x_test = arrays.x_pool, arrays.x_test
        self._blank = self.normaliser.blank  # a blank (zero) pixel after normalisation
        self._pool = (x_pool, arrays.y_pool)
        train_idx, val_idx = self._train_val_indices(arrays.y_pool)
        if self.train_subset is not None:
            if self.train_subset > len(train_idx):
                raise ConfigError(
                    "data.train_subset",
                    f"{self.train_subset} exceeds the {len(train_idx)} training images; use a smaller value or null",
                )
            g = torch.Generator().manual_seed(self.seed)
            train_idx = train_idx[torch.randperm(len(train_idx), generator=g)[: self.train_subset]]
        self._split = {
            "train": (x_pool, train_idx),
            "val": (x_pool, val_idx),
            "test": (x_test, torch.arange(len(arrays.y_test))),
        }
        self._labels = {"train": arrays.y_pool, "val": arrays.y_pool, "test": arrays.y_test}

    def _loaded_arrays(self) -> tuple[Arrays, Normaliser]:
        """The arrays as stored and their normaliser (the statistics of the training pool, per channel,
        applied batch by batch); from the process's last load when it was of the same data."""
        key = self.arrays_key()
        key = None if key is None else (type(self), *key)
        if key is not None and key in _LOADED:
            return _LOADED[key]
        arrays = self.load_arrays()
        loaded = (arrays, pool_normaliser(arrays.x_pool))
        if key is not None:
            _LOADED.clear()
            _LOADED[key] = loaded
        return loaded

    def _train_val_indices(self, y: Tensor) -> tuple[Tensor, Tensor]:
        idx = torch.arange(len(y))
        if self.fold is not None:
            k, folds = self.fold
            splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.seed)
            train, val = list(splitter.split(idx.numpy(), y.numpy()))[k]
            return torch.as_tensor(train), torch.as_tensor(val)
        train, val = train_test_split(idx.numpy(), test_size=self.pool_val_fraction(), random_state=self.seed,
                                      stratify=y.numpy())
        return torch.as_tensor(train), torch.as_tensor(val)

    def split_size(self, split: str) -> int:
        self.setup()
        return len(self._split[split][1])

    def _loader(self, split: str) -> DataLoader:
        self.setup()
        x, idx = self._split[split]
        trainer = getattr(self, "trainer", None)
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        epoch = (lambda: fit_epoch(trainer)) if trainer is not None else None
        sampler = IndexBatchSampler(idx, self.batch_size, shuffle=split == "train", seed=self.shuffle_seed,
                                    rank=rank, world_size=world, epoch_source=epoch)
        return DataLoader(TensorBatches(x, self._labels[split], self.include_index), sampler=sampler, batch_size=None,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def normalise(self, x: Tensor) -> Tensor:
        """Stored images (a batch of a loader) as the network takes them, on their own device."""
        self.setup()
        return self.normaliser(x)

    def on_after_batch_transfer(self, batch: tuple[Tensor, ...], dataloader_idx: int) -> tuple[Tensor, ...]:
        """Every batch on its device: normalised; training batches then augmented, drawn from (seed, epoch,
        rank)."""
        x = self.normalise(batch[0])
        trainer = getattr(self, "trainer", None)
        if not self.augment.active or trainer is None or not trainer.training or trainer.sanity_checking:
            return (x, *batch[1:])
        epoch = fit_epoch(trainer)
        if self._stream is None or self._stream[0] != epoch:  # a new epoch (or a resumed run) starts a new stream
            seed = epoch_seed(self.shuffle_seed, epoch, trainer.global_rank) + 1  # not the order's stream
            self._stream = (epoch, torch.Generator().manual_seed(seed))
        x = self.augment(x, self._stream[1], self._blank.to(x))
        return (x, *batch[1:])

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    @property
    def augments(self) -> bool:
        """Whether training batches are augmented (drawn anew every epoch)."""
        return self.augment.active

    def sample_indices(self, split: str) -> Tensor:
        """The indices batches of ``split`` carry as their third element (``include_index``): positions
        in the tensors the split is drawn from (the training pool for train and val)."""
        self.setup()
        return self._split[split][1]

    def split_tensors(self, split: str) -> tuple[SplitImages, Tensor]:
        """All images and labels of ``split`` ("train", "val" or "test") as they are fed to the network,
        unsharded and without augmentation: for evaluations outside the Trainer (after-fit steps, combiners).
        The images are normalised as they are read: ``x[a:b]``, ``x[index]`` and ``x.split(n)`` give float
        tensors of those images only."""
        self.setup()
        x, idx = self._split[split]
        return SplitImages(x, idx, self.normaliser), self._labels[split][idx]

    # -- what a checkpoint records about the data ----------------------------------------------
    def class_names(self) -> list[str]:
        """The classes' names in label order (a data set with names of its own overrides this)."""
        return [str(i) for i in range(self.num_classes)]

    def data_spec(self) -> dict[str, Any]:
        """What a new image must look like to this run's network (the data spec every checkpoint and
        summary.json record): the network's input shape, the class names, the per-channel mean and std
        (of the training pool, on the [0, 1] scale), the channels and the image size."""
        self.setup()
        c, h, w = self.input_shape
        return {"input_shape": [c, h, w], "classes": list(self.class_names()),
                "mean": [float(v) for v in self.normaliser.mean], "std": [float(v) for v in self.normaliser.std],
                "channels": c, "image_size": [h, w]}
