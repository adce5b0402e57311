"""data=folder: a folder of your own images, one subfolder per class, trained on with no code.

Two layouts (archfuse.data.folder_scan): ``DIR/<class>/*``, split into train, validation and test by
``val_fraction`` and ``test_fraction`` (stratified, seeded by ``seed``); or ``DIR/{train,val,test}/<class>/*``
with val/ optional (carved from train/ by ``val_fraction`` when absent). The images are decoded once
into a uint8 cache (archfuse.data.image_cache) that later runs read; a set within the ``in_memory``
budget is read into memory, a larger one is memory-mapped and streamed batch by batch.
"""

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import Tensor

from archfuse.checks import must_be
from archfuse.data.datamodule import Arrays, TensorDataModule, check_share
from archfuse.data.folder_scan import Listing, scan
from archfuse.data.image_cache import Decoded, default_cache_dir, load_or_decode
from archfuse.data.storage import IndexedImages
from archfuse.errors import ConfigError

MIB = 1 << 20


def image_size_option(value: Any) -> tuple[int, int] | None:
    """``image_size``: null, H (square) or [H, W], each a positive integer."""
    if value is None:
        return None
    sides = list(value) if isinstance(value, list | tuple) else [value, value]
    if len(sides) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sides):
        raise must_be("data.image_size", "null (the images' own size), a positive integer H or a list [H, W]",
                      value)
    return sides[0], sides[1]


def in_memory_option(value: Any) -> bool | int:
    """``in_memory``: true, false or a budget in MiB; returns True, False or the budget in bytes."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value >= 0:
        return int(value * MIB)
    raise must_be("data.in_memory", "true, false or a budget in MiB (a number >= 0)", value)


class FolderDataModule(TensorDataModule):
    """Images under ``root``; ``channels`` auto (grayscale when every image is, else RGB), 1 or 3;
    ``image_size`` null (every image must then have the same size), H or [H, W] (bilinear, antialiased);
    ``skip_bad`` skips unreadable files (counted) instead of refusing them; ``in_memory`` true, false or
    a budget in MiB for the decoded uint8 images; ``cache_dir`` where they are cached (null: the user's
    cache folder, $XDG_CACHE_HOME/archfuse/images or ~/.cache/archfuse/images)."""

    def __init__(self, *, root: str | None, test_fraction: float, channels: str | int,
                 image_size: int | list[int] | None, skip_bad: bool, in_memory: bool | float, cache_dir: str | None,
                 **kwargs):
        super().__init__(**kwargs)
        if not isinstance(root, str) or not root:
            raise ConfigError("data.root", "missing: data=folder needs the folder of images, data.root=DIR")
        check_share("data.test_fraction", test_fraction)
        if self.val_fraction + test_fraction >= 1.0:
            raise ConfigError("data.val_fraction", f"val_fraction ({self.val_fraction}) + test_fraction "
                              f"({test_fraction}) must be below 1 so that training images remain")
        if channels not in ("auto", 1, 3) or isinstance(channels, bool):
            raise must_be("data.channels", "auto, 1 (grayscale) or 3 (RGB)", channels)
        if not isinstance(skip_bad, bool):
            raise must_be("data.skip_bad", "true or false", skip_bad)
        self.root, self.test_fraction = str(Path(root).expanduser()), test_fraction
        self.channels_option = None if channels == "auto" else channels
        self.size_option = image_size_option(image_size)
        self.skip_bad, self.in_memory = skip_bad, in_memory_option(in_memory)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self._listing: Listing | None = None
        self._decoded: Decoded | None = None
        self._kept: np.ndarray | None = None  # indices of the files that decoded

    # -- the folder, scanned and decoded once (the shape and classes come from it) ---------------
    def _prepare(self) -> tuple[Listing, Decoded]:
        if self._decoded is None:
            listing = self._listing = scan(self.root)
            decoded = load_or_decode(listing, self.channels_option, self.size_option, self.cache_dir, self.skip_bad,
                                     self.in_memory)
            # Index bookkeeping in numpy: a start that reads the cache takes a fraction of a second.
            self._file_labels, self._parts = np.asarray(listing.labels, dtype=np.int64), np.asarray(listing.parts)
            keep = np.ones(len(listing.files), dtype=bool)
            keep[list(decoded.bad)] = False
            self._kept = np.flatnonzero(keep)
            if decoded.bad:
                first = min(decoded.bad)
                print(f"data.skip_bad: skipped {len(decoded.bad)} of {len(listing.files)} files that are not readable "
                      f"images (the first: {listing.files[first]}: {decoded.bad[first]})", file=sys.stderr)
            self._check_sizes()
            self._decoded = decoded
        return self._listing, self._decoded

    @property
    def in_channels(self) -> int:
        return self._prepare()[1].channels

    @property
    def input_size(self) -> tuple[int, int]:
        return self._prepare()[1].size

    @property
    def num_classes(self) -> int:
        return len(self._prepare()[0].classes)

    def class_names(self) -> list[str]:
        return list(self._prepare()[0].classes)

    def check_available(self) -> None:
        """The folder scanned, decoded (or read from the cache) and its splits' sizes checked."""
        self._prepare()

    # -- splits --------------------------------------------------------------------------------
    def _kept_in(self, part: str) -> np.ndarray:
        return self._kept[self._parts[self._kept] == part]

    def _check_sizes(self) -> None:
        """Enough images of every class for the splits, named by the option to change."""
        classes = self._listing.classes
        counts = np.bincount(self._file_labels[self._kept], minlength=len(classes))
        if counts.min() == 0:
            raise ConfigError("data.skip_bad", f"class {classes[int(counts.argmin())]!r} has no readable images left "
                              "after skipping unreadable files; add images to it or remove its folder")
        if self._listing.split_layout:
            if not self._listing.has_part("val"):
                self._check_share("data.val_fraction", self.val_fraction, self._kept_in("train"), "train/")
            return
        self._check_share("data.test_fraction", self.test_fraction, self._kept, "the folder")
        self._check_share("data.val_fraction", self.pool_val_fraction(), self._kept, "the folder",
                          shown=self.val_fraction)

    def _check_share(self, key: str, share: float, files: np.ndarray, where: str, shown: float | None = None) -> None:
        classes = self._listing.classes
        counts = np.bincount(self._file_labels[files], minlength=len(classes))
        n, held = len(files), math.ceil(share * len(files))
        if counts.min() < 2:
            raise ConfigError(key, f"class {classes[int(counts.argmin())]!r} has {counts.min()} image(s) in {where}; a "
                              "stratified split needs at least 2 of every class (3 in DIR/<class>/*: train, validation "
                              "and test)")
        if held < len(classes) or n - held < len(classes):
            raise ConfigError(key, f"{shown if shown is not None else share} of the {n} images of {where} is {held}, "
                              f"but a stratified split needs at least as many images as the {len(classes)} classes on "
                              "each side; change the share or add images")

    def load_arrays(self) -> Arrays:
        listing, decoded = self._prepare()
        if listing.split_layout:
            pool, test = np.concatenate([self._kept_in("train"), self._kept_in("val")]), self._kept_in("test")
        else:
            try:
                pool, test = train_test_split(self._kept, test_size=self.test_fraction, random_state=self.seed,
                                              stratify=self._file_labels[self._kept])
            except ValueError as err:
                raise ConfigError("data.test_fraction",
                                  f"cannot split {len(self._kept)} images stratified: {err}") from None
        self._pool_is_val = torch.from_numpy(self._parts[pool] == "val")
        pool, test = torch.from_numpy(pool), torch.from_numpy(test)
        labels = torch.from_numpy(self._file_labels)
        return Arrays(IndexedImages(decoded.images, pool), labels[pool], IndexedImages(decoded.images, test),
                      labels[test])

    def pool_val_fraction(self) -> float:
        if self._listing is not None and self._listing.split_layout:
            return self.val_fraction  # a share of train/
        return self.val_fraction / (1.0 - self.test_fraction)  # val_fraction is a share of all images

    def _train_val_indices(self, y: Tensor) -> tuple[Tensor, Tensor]:
        if self.fold is None and self._listing.split_layout and self._listing.has_part("val"):
            positions = torch.arange(len(y))
            return positions[~self._pool_is_val], positions[self._pool_is_val]
        try:
            return super()._train_val_indices(y)
        except ValueError as err:
            raise ConfigError("data.val_fraction", f"cannot split {len(y)} images stratified: {err}") from None
