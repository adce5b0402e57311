"""MNIST, Fashion-MNIST, KMNIST and CIFAR-10 read by torchvision's own loaders, then held as uint8 tensors."""

import pickle
from pathlib import Path

import numpy as np
import torch
from torchvision import datasets

from archfuse.data.datamodule import Arrays, TensorDataModule
from archfuse.errors import ConfigError


class TorchvisionDataModule(TensorDataModule):
    """A torchvision data set under ``root``; ``download=true`` fetches it (rank 0 only)."""

    dataset_cls: type = datasets.MNIST

    def __init__(self, *, root: str, download: bool, **kwargs):
        super().__init__(**kwargs)
        self.root = str(Path(root).expanduser())
        self.download = download

    def expected_files(self) -> list[Path]:
        raw = Path(self.root) / self.dataset_cls.__name__ / "raw"
        return [raw / Path(url).name.removesuffix(".gz") for url, _ in self.dataset_cls.resources]

    def check_available(self) -> None:
        if self.download:
            return
        missing = [p for p in self.expected_files() if not p.is_file()]
        if missing:
            raise ConfigError(
                "data.root",
                f"{self.dataset_cls.__name__} not found: {missing[0]} is missing. Point data.root at the folder "
                f"that holds {self.dataset_cls.__name__}/, or add data.download=true to download it there",
            )

    def prepare_data(self) -> None:
        if self.download:
            for train in (True, False):
                self.dataset_cls(self.root, train=train, download=True)

    def _read(self, train: bool):
        return self.dataset_cls(self.root, train=train, download=False)

    def arrays_key(self) -> tuple | None:
        """The files' paths, sizes and modification times: a file replaced between jobs is read again."""
        files = self.expected_files()
        if not all(p.is_file() for p in files):
            return None
        return tuple((str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in files)

    def load_arrays(self) -> Arrays:
        self.check_available()
        train, test = self._read(True), self._read(False)
        self._classes = [str(c) for c in train.classes]
        return Arrays(self._images(train.data), torch.as_tensor(train.targets, dtype=torch.long),
                      self._images(test.data), torch.as_tensor(test.targets, dtype=torch.long))

    def class_names(self) -> list[str]:
        self.setup()
        return self._classes

    @staticmethod
    def _images(data) -> torch.Tensor:
        """The images as they are stored, bytes: (N, C, H, W) uint8 (normalised batch by batch)."""
        x = torch.as_tensor(np.asarray(data))
        x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)  # (N,H,W) or (N,H,W,C)
        return x.contiguous()


class MNISTDataModule(TorchvisionDataModule):
    dataset_cls = datasets.MNIST


class FashionMNISTDataModule(TorchvisionDataModule):
    dataset_cls = datasets.FashionMNIST


class KMNISTDataModule(TorchvisionDataModule):
    dataset_cls = datasets.KMNIST


class _CIFAR10Unverified(datasets.CIFAR10):
    """torchvision's CIFAR10 reader with the MD5 check reduced to "the files exist"."""

    def _check_integrity(self) -> bool:
        folder = Path(self.root) / self.base_folder
        return all((folder / name).is_file() for name, _ in self.train_list + self.test_list)

    def _load_meta(self) -> None:
        # torchvision MD5-checks batches.meta here too; re-packed copies differ from the official file.
        path = Path(self.root) / self.base_folder / self.meta["filename"]
        with open(path, "rb") as f:
            self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}


class CIFAR10DataModule(TorchvisionDataModule):
    """``verify_checksums=false`` accepts CIFAR files whose MD5 differs from the official release
    (re-packed or reduced copies); the reading code is torchvision's either way."""

    dataset_cls = datasets.CIFAR10
    in_channels, input_size, num_classes = 3, (32, 32), 10

    def __init__(self, *, verify_checksums: bool, **kwargs):
        super().__init__(**kwargs)
        self.verify_checksums = verify_checksums

    def expected_files(self) -> list[Path]:
        folder = Path(self.root) / self.dataset_cls.base_folder
        names = [name for name, _ in self.dataset_cls.train_list + self.dataset_cls.test_list]
        return [folder / name for name in names + [self.dataset_cls.meta["filename"]]]

    def arrays_key(self) -> tuple | None:
        key = super().arrays_key()
        return None if key is None else (*key, self.verify_checksums)

    def _read(self, train: bool):
        cls = self.dataset_cls if self.verify_checksums else _CIFAR10Unverified
        try:
            return cls(self.root, train=train, download=False)
        except RuntimeError as err:  # torchvision: "Dataset not found or corrupted"
            raise ConfigError("data.root", f"CIFAR-10 under {self.root} is corrupted ({err}); re-download it "
                              "with data.download=true, or set data.verify_checksums=false for re-packed files") from None
