"""Small files in the official formats (IDX for the MNIST family, pickled batches for CIFAR-10),
read by torchvision's own loaders through the data modules, and one CLI run on a written MNIST."""

import pickle
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch

from archfuse.data.torchvision_sets import (CIFAR10DataModule, FashionMNISTDataModule, KMNISTDataModule,
                                            MNISTDataModule)
from archfuse.errors import ConfigError
from conftest import REPO, SHARED_MNIST, data_module, run_cli, run_dirs, summary


def write_idx(path, magic: int, array: np.ndarray) -> None:
    """IDX as in the MNIST release: big-endian magic (2051 images, 2049 labels), dims, then uint8 data."""
    path.write_bytes(struct.pack(f">{1 + array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes())


def fake_images(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def labels_for(n: int, offset: int = 0) -> np.ndarray:
    return (np.arange(n) + offset) % 10  # every class present, so stratified splits work


def write_mnist_like(root, name: str, n_train: int, n_test: int) -> dict[str, np.ndarray]:
    raw = root / name / "raw"
    raw.mkdir(parents=True)
    arrays = {"train_x": fake_images(n_train, (28, 28), 1), "train_y": labels_for(n_train),
              "test_x": fake_images(n_test, (28, 28), 2), "test_y": labels_for(n_test, offset=3)}
    for prefix, split in (("train", "train"), ("t10k", "test")):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", 2051, arrays[f"{split}_x"])
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", 2049, arrays[f"{split}_y"])
    return arrays


def write_cifar(root, per_batch: int = 20, n_test: int = 30) -> dict[str, np.ndarray]:
    """CIFAR-10's python release: pickled dicts with 'data' (N, 3072) uint8 rows (R, G, B planes)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train_x, train_y = [], []
    for i in range(1, 6):
        x, y = fake_images(per_batch, (3072,), 10 + i), labels_for(per_batch, offset=i)
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps({"data": x, "labels": y.tolist()}))
        train_x.append(x)
        train_y.append(y)
    test_x, test_y = fake_images(n_test, (3072,), 99), labels_for(n_test)
    (folder / "test_batch").write_bytes(pickle.dumps({"data": test_x, "labels": test_y.tolist()}))
    meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                            "truck"], "num_cases_per_batch": per_batch, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return {"train_x": np.concatenate(train_x).reshape(-1, 3, 32, 32), "train_y": np.concatenate(train_y),
            "test_x": test_x.reshape(-1, 3, 32, 32), "test_y": test_y}


def test_split(dm) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole test split in file order (the test loader does not shuffle), normalised as the run's
    batches are on their device."""
    batches = list(dm.test_dataloader())
    assert batches[0][0].dtype == torch.uint8  # held and loaded as bytes
    return dm.normalise(torch.cat([x for x, _ in batches])), torch.cat([y for _, y in batches])


test_split.__test__ = False  # a helper, not a test


def assert_round_trip(dm, arrays: dict[str, np.ndarray]) -> None:
    """Test images are the file's bytes / 255, normalised with the training pool's per-channel stats."""
    pool = torch.as_tensor(arrays["train_x"]).float().div(255.0)
    pool = pool.unsqueeze(1) if pool.ndim == 3 else pool
    mean, std = pool.mean(dim=(0, 2, 3), keepdim=True), pool.std(dim=(0, 2, 3), keepdim=True)
    x, y = test_split(dm)
    expected = torch.as_tensor(arrays["test_x"]).float().div(255.0)
    expected = expected.unsqueeze(1) if expected.ndim == 3 else expected
    assert torch.allclose(x * std + mean, expected, atol=1e-5)
    assert torch.equal(y, torch.as_tensor(arrays["test_y"], dtype=torch.long))
    assert torch.equal(dm.pool_labels(), torch.as_tensor(arrays["train_y"], dtype=torch.long))


CONFIG_NAME = {MNISTDataModule: "mnist", FashionMNISTDataModule: "fashion_mnist", KMNISTDataModule: "kmnist",
               CIFAR10DataModule: "cifar10"}


# -- the MNIST family -------------------------------------------------------------------------

@pytest.mark.parametrize("module", [MNISTDataModule, FashionMNISTDataModule, KMNISTDataModule])
def test_mnist_family_reads_idx_files(tmp_path, module):
    arrays = write_mnist_like(tmp_path, module.dataset_cls.__name__, n_train=100, n_test=30)
    dm = data_module(CONFIG_NAME[module], root=str(tmp_path), val_fraction=0.2, batch_size=16)
    dm.check_available()  # all four files are where torchvision looks
    assert dm.input_shape == (1, 28, 28)
    assert (dm.split_size("train"), dm.split_size("val"), dm.split_size("test")) == (80, 20, 30)
    x, y = test_split(dm)
    assert x.shape == (30, 1, 28, 28) and x.dtype == torch.float32
    assert y.tolist() == [(i + 3) % 10 for i in range(30)]
    assert_round_trip(dm, arrays)


def test_known_image_round_trips_through_mnist(tmp_path):
    arrays = write_mnist_like(tmp_path, "MNIST", n_train=50, n_test=10)
    # Test image 0: a white square on black; its pixels must come back exactly after un-normalising.
    square = np.zeros((28, 28), dtype=np.uint8)
    square[10:18, 10:18] = 255
    arrays["test_x"][0] = square
    write_idx(tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte", 2051, arrays["test_x"])
    dm = data_module("mnist", root=str(tmp_path), val_fraction=0.2)
    x, _ = test_split(dm)
    pool = torch.as_tensor(arrays["train_x"]).float().div(255.0)
    restored = x[0, 0] * pool.std() + pool.mean()
    assert torch.allclose(restored, torch.as_tensor(square).float() / 255.0, atol=1e-5)


@pytest.mark.parametrize("module, name", [(MNISTDataModule, "MNIST"), (KMNISTDataModule, "KMNIST"),
                                          (CIFAR10DataModule, "CIFAR10")])
def test_missing_dataset_names_the_path_and_download(tmp_path, module, name):
    dm = data_module(CONFIG_NAME[module], root=str(tmp_path / "empty"))
    with pytest.raises(ConfigError) as err:
        dm.setup()
    message = str(err.value)
    assert err.value.key == "data.root"
    assert message.startswith(f"data.root: {name} not found: {tmp_path / 'empty'}")
    assert "data.download=true" in message


def test_one_missing_file_is_named(tmp_path):
    write_mnist_like(tmp_path, "MNIST", n_train=50, n_test=10)
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(ConfigError, match="t10k-labels-idx1-ubyte is missing"):
        data_module("mnist", root=str(tmp_path)).check_available()


def test_the_same_files_are_read_once_and_a_rewritten_file_again(tmp_path):
    import os

    arrays = write_mnist_like(tmp_path, "MNIST", n_train=50, n_test=10)
    first = data_module("mnist", root=str(tmp_path), val_fraction=0.2)
    first.setup()
    second = data_module("mnist", root=str(tmp_path), val_fraction=0.2, batch_size=8)
    second.setup()
    assert second._split["test"][0] is first._split["test"][0]  # the jobs of a multirun share one load
    arrays["test_x"][0] = 255 - arrays["test_x"][0]
    images = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    write_idx(images, 2051, arrays["test_x"])
    os.utime(images, ns=(images.stat().st_atime_ns, images.stat().st_mtime_ns + 10**9))
    third = data_module("mnist", root=str(tmp_path), val_fraction=0.2)
    assert_round_trip(third, arrays)
    assert not torch.equal(third._split["test"][0], first._split["test"][0])


# -- CIFAR-10 ---------------------------------------------------------------------------------

def test_cifar_with_checksums_refuses_unofficial_files(tmp_path):
    write_cifar(tmp_path)
    dm = data_module("cifar10", root=str(tmp_path), verify_checksums=True)
    dm.check_available()  # the files exist; only their MD5 differs
    with pytest.raises(ConfigError) as err:
        dm.setup()
    assert err.value.key == "data.root"
    assert f"CIFAR-10 under {tmp_path} is corrupted" in str(err.value)
    assert "data.verify_checksums=false" in str(err.value)


def test_cifar_without_checksums_reads_pickled_batches(tmp_path):
    arrays = write_cifar(tmp_path, per_batch=20, n_test=30)
    dm = data_module("cifar10", root=str(tmp_path), verify_checksums=False, val_fraction=0.2, batch_size=8)
    assert dm.input_shape == (3, 32, 32)
    assert (dm.split_size("train"), dm.split_size("val"), dm.split_size("test")) == (80, 20, 30)
    x, y = test_split(dm)
    assert x.shape == (30, 3, 32, 32)
    assert y.tolist() == [i % 10 for i in range(30)]
    # Per-channel normalisation: each channel of the pool has mean 0, std 1.
    x_pool = dm.normalise(torch.cat([x for x, _ in dm.train_dataloader()] + [x for x, _ in dm.val_dataloader()]))
    assert torch.allclose(x_pool.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(x_pool.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-3)
    assert_round_trip(dm, arrays)


# -- the CLI on a written MNIST ---------------------------------------------------------------

def test_cli_trains_and_tests_on_written_mnist(tmp_path, workdir):
    root = tmp_path / "data"
    write_mnist_like(root, "MNIST", n_train=200, n_test=100)
    run_cli(workdir, "data=mnist", f"data.root={root}", "trainer.max_epochs=1", "quiet=true", "cost.repeats=2",
            "cost.warmup=1", "model=seed001")
    (run_dir,) = run_dirs(workdir)
    result = summary(run_dir)
    assert result["status"] == "ok"
    assert result["metrics"]["test/samples"] == 100
    assert result["config"]["data"]["root"] == str(root)
    assert 0.0 <= result["metrics"]["test/acc"] <= 1.0


# -- bench/prepare_mnist.py on the real MNIST test set ----------------------------------------

def test_prepare_mnist_script_splits_real_t10k(tmp_path):
    if not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST not found at {SHARED_MNIST}")
    out = tmp_path / "prepared"
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "prepare_mnist.py"), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "8000 train, 2000 test" in proc.stdout
    dm = data_module("mnist", root=str(out), val_fraction=0.1)
    assert dm.split_size("train") + dm.split_size("val") == 8000
    assert dm.split_size("val") == 800
    x, y = test_split(dm)
    assert x.shape == (2000, 1, 28, 28)
    assert torch.bincount(y, minlength=10).min() > 150  # real digits: every class well represented
    assert torch.bincount(dm.pool_labels(), minlength=10).min() > 600


def test_prepare_mnist_script_names_missing_source(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "prepare_mnist.py"), "--out", str(tmp_path / "o"),
                           "--src", str(tmp_path / "nowhere")], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert f"MNIST source file missing: {tmp_path / 'nowhere' / 't10k-images-idx3-ubyte.gz'}" in proc.stderr
    assert not (tmp_path / "o").exists()
