"""data=folder in-process, on real image files the tests write: layouts, formats, channels, sizes, the
splits, the decode-once cache (reuse, invalidation, two runs at once), memory-mapped streaming with
DataLoader workers, unreadable files, and the data spec."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from lightning.pytorch import Callback, Trainer
from omegaconf import OmegaConf
from torchvision.io import decode_image

from archfuse.data.folder_scan import scan
from archfuse.data.images import read_image
from archfuse.data.storage import MemmapImages
from archfuse.errors import ConfigError
from archfuse.validate import validate
from conftest import REPO, cli_env, compose_train, data_module
from image_files import pixels, write_class_folders, write_image

CLASSES = {"zebra": 20, "ant": 20, "mole": 20}  # not in name order: classes are ordered by folder name


def folder(root, cache, **options):
    return data_module("folder", root=str(root), cache_dir=str(cache), **options)


def stored(dm) -> dict[str, torch.Tensor]:
    """{relative path: the uint8 pixels the module holds for it}."""
    listing, decoded = dm._prepare()
    return {f: decoded.images[torch.tensor([i])][0] for i, f in enumerate(listing.files)}


def entries(cache) -> list[str]:
    return sorted(p.name for p in cache.glob("*.npy"))


# -- layouts, classes, splits ---------------------------------------------------------------------------

def test_class_folders_are_split_stratified_and_ordered_by_name(tmp_path):
    written = write_class_folders(tmp_path / "img", CLASSES)
    dm = folder(tmp_path / "img", tmp_path / "cache", val_fraction=0.1, test_fraction=0.2)
    assert dm.class_names() == ["ant", "mole", "zebra"]
    assert (dm.input_shape, dm.num_classes) == ((1, 12, 10), 3)
    dm.setup()
    sizes = {s: dm.split_size(s) for s in ("train", "val", "test")}
    assert sizes == {"train": 42, "val": 6, "test": 12}
    for split, n in sizes.items():  # every class gets its share of every split
        x, y = dm.split_tensors(split)
        assert torch.bincount(y, minlength=3).tolist() == [n // 3] * 3
    assert stored(dm).keys() == written.keys()
    for rel, img in stored(dm).items():
        assert torch.equal(img, written[rel])  # PNG is lossless: the file's pixels, as uint8
    # Seeded: the same seed gives the same split, another seed another one.
    same, other = folder(tmp_path / "img", tmp_path / "cache", test_fraction=0.2), \
        folder(tmp_path / "img", tmp_path / "cache", test_fraction=0.2, seed=1)
    same.setup(), other.setup()
    assert torch.equal(same._split["val"][1], dm._split["val"][1])
    assert not torch.equal(other._split["test"][0].index, dm._split["test"][0].index)


def test_split_layout_uses_its_folders_and_carves_val_from_train_when_absent(tmp_path):
    root = tmp_path / "img"
    write_class_folders(root / "train", {"a": 10, "b": 10})
    write_class_folders(root / "test", {"a": 3, "b": 4}, seed=50)
    dm = folder(root, tmp_path / "cache", val_fraction=0.2)
    dm.setup()
    assert (dm.split_size("train"), dm.split_size("val"), dm.split_size("test")) == (16, 4, 7)
    assert dm.split_tensors("test")[1].tolist() == [0, 0, 0, 1, 1, 1, 1]
    write_class_folders(root / "val", {"a": 2, "b": 1}, seed=80)
    dm = folder(root, tmp_path / "cache", val_fraction=0.2)
    dm.setup()
    assert (dm.split_size("train"), dm.split_size("val"), dm.split_size("test")) == (20, 3, 7)
    val_files = {dm._listing.files[i] for i in dm._split["val"][0].index[dm._split["val"][1]].tolist()}
    assert val_files == {"val/a/000.png", "val/a/001.png", "val/b/000.png"}


def test_hidden_files_and_loose_files_are_ignored(tmp_path):
    root = tmp_path / "img"
    write_class_folders(root, {"a": 5, "b": 5})
    (root / "README.txt").write_text("not a class")
    (root / "a" / ".DS_Store").write_bytes(b"\0\1")
    (root / ".archive").mkdir()
    write_image(root / "b" / "nested" / "x.png", pixels((1, 12, 10), 9))  # subfolders of a class count
    listing = scan(root)
    assert listing.classes == ["a", "b"] and len(listing.files) == 11
    assert listing.files[-1] == "b/nested/x.png"


# -- formats, channels, sizes ---------------------------------------------------------------------------

def test_png_jpeg_bmp_webp_decode_and_auto_channels_turn_rgb_when_one_image_is(tmp_path):
    root = tmp_path / "img"
    gray, rgb = pixels((1, 12, 10), 1), pixels((3, 12, 10), 2)
    c, y, x = torch.meshgrid(torch.arange(3), torch.arange(12), torch.arange(10), indexing="ij")
    smooth = (40 * c + 10 * y + 5 * x).to(torch.uint8)  # a gradient: JPEG keeps it closely
    for suffix in (".png", ".bmp", ".webp"):
        write_image(root / "gray" / f"g{suffix}", gray)
        write_image(root / "gray" / f"g2{suffix}", gray)
        write_image(root / "colour" / f"c{suffix}", rgb)
    write_image(root / "colour" / "c.jpg", smooth)
    dm = folder(root, tmp_path / "cache", test_fraction=0.25, val_fraction=0.25)
    assert dm.input_shape == (3, 12, 10)
    held = stored(dm)
    for name in ("colour/c.png", "colour/c.bmp", "colour/c.webp"):
        assert torch.equal(held[name], rgb), name  # lossless formats: exact
    assert torch.equal(held["colour/c.jpg"], decode_image(str(root / "colour" / "c.jpg")))  # torchvision's decoder
    assert (held["colour/c.jpg"].int() - smooth.int()).abs().float().mean() < 8  # JPEG: close
    for name in ("gray/g.png", "gray/g.bmp", "gray/g.webp"):
        assert torch.equal(held[name], gray.expand(3, -1, -1)), name  # grayscale repeated to RGB
    only_gray = folder(root, tmp_path / "cache", channels=1, test_fraction=0.25, val_fraction=0.25)
    assert only_gray.input_shape == (1, 12, 10)
    assert torch.equal(stored(only_gray)["gray/g.png"], gray)
    assert len(entries(tmp_path / "cache")) == 2  # channels are part of the cache's key


def test_all_grayscale_stays_one_channel_and_read_image_matches_what_is_stored(tmp_path):
    root = tmp_path / "img"
    write_class_folders(root, {"a": 4, "b": 4}, shape=(1, 20, 16), suffix=".bmp")
    dm = folder(root, tmp_path / "cache", image_size=[10, 8], test_fraction=0.25, val_fraction=0.25)
    assert dm.input_shape == (1, 10, 8) and dm.data_spec()["image_size"] == [10, 8]
    for rel, img in stored(dm).items():
        assert torch.equal(img, read_image(root / rel, 1, (10, 8)))  # how a new image is read to look the same


def test_a_16_bit_png_is_held_as_its_top_8_bits(tmp_path):
    from PIL import Image

    values = (np.arange(12 * 10, dtype=np.int64).reshape(12, 10) * 541) % 65536
    Image.fromarray(values.astype(np.uint16)).save(tmp_path / "deep.png")
    img = read_image(tmp_path / "deep.png", None, None)
    assert img.dtype == torch.uint8 and img.shape == (1, 12, 10)
    assert torch.equal(img[0], torch.from_numpy((values >> 8).astype(np.uint8)))


def test_image_size_resizes_mixed_sizes_and_without_it_they_are_refused(tmp_path):
    root = tmp_path / "img"
    write_class_folders(root, {"a": 4, "b": 4})
    write_image(root / "b" / "big.png", pixels((1, 30, 30), 7))
    with pytest.raises(ConfigError) as err:
        folder(root, tmp_path / "cache").check_available()
    assert err.value.key == "data.image_size"
    assert f"{root / 'a' / '000.png'} is 12x10, {root / 'b' / 'big.png'} is 30x30" in str(err.value)
    assert "data.image_size=H or [H,W]" in str(err.value)
    assert not (tmp_path / "cache").exists()  # nothing is left: no half-written entry, no lock, no folder
    dm = folder(root, tmp_path / "cache", image_size=16, test_fraction=0.3, val_fraction=0.3)
    assert dm.input_shape == (1, 16, 16)


# -- the cache ------------------------------------------------------------------------------------------

def test_the_cache_is_reused_and_a_changed_file_makes_a_new_entry(tmp_path, capsys):
    root, cache = tmp_path / "img", tmp_path / "cache"
    write_class_folders(root, CLASSES)
    first = folder(root, cache)
    first.check_available()
    assert "decoding the 60 images" in capsys.readouterr().err
    again = folder(root, cache)
    again.check_available()
    assert capsys.readouterr().err == ""  # read from the cache, nothing decoded
    assert len(entries(cache)) == 1 and sorted(p.suffix for p in cache.iterdir()) == [".json", ".npy"]
    assert torch.equal(again._decoded.images, first._decoded.images)
    write_image(root / "ant" / "005.png", pixels((1, 12, 10), 999))  # same name and size, new pixels and mtime
    changed = folder(root, cache)
    changed.check_available()
    assert "decoding" in capsys.readouterr().err and len(entries(cache)) == 2
    assert torch.equal(stored(changed)["ant/005.png"], pixels((1, 12, 10), 999))
    folder(root, cache, image_size=[6, 5]).check_available()
    assert len(entries(cache)) == 3


SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from conftest import data_module
dm = data_module("folder", root={root!r}, cache_dir={cache!r})
dm.check_available()
print(int(dm._decoded.images.long().sum()))
"""


def test_two_runs_starting_together_decode_once_and_agree(tmp_path):
    root, cache = tmp_path / "img", tmp_path / "cache"
    write_class_folders(root, {"a": 150, "b": 150}, shape=(3, 24, 24))
    script = SCRIPT.format(tests=str(REPO / "tests"), root=str(root), cache=str(cache))
    procs = [subprocess.Popen([sys.executable, "-c", script], env=cli_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    assert outs[0][0] == outs[1][0]
    assert sum("decoding" in err for _, err in outs) == 1  # the second waited for the first's entry
    assert len(entries(cache)) == 1 and not list(cache.glob(".*.tmp"))


# -- memory: uint8 in memory or memory-mapped, normalised batch by batch ---------------------------------

def test_a_set_over_the_budget_streams_from_the_cache_with_workers(tmp_path):
    root, cache = tmp_path / "img", tmp_path / "cache"
    write_class_folders(root, CLASSES, shape=(3, 8, 8))
    in_ram = folder(root, cache, batch_size=16)
    streamed = folder(root, cache, batch_size=16, in_memory=0, num_workers=2)
    in_ram.setup(), streamed.setup()
    assert isinstance(in_ram._decoded.images, torch.Tensor) and in_ram._decoded.images.dtype == torch.uint8
    assert isinstance(streamed._decoded.images, MemmapImages)
    assert len(pickle.dumps(streamed._decoded.images)) < 1000  # a worker gets the path, not the pixels
    for split in ("train", "val", "test"):
        ram_batches = list(in_ram._loader(split))
        stream_batches = list(streamed._loader(split))
        assert len(ram_batches) == len(stream_batches)
        for (xa, ya), (xb, yb) in zip(ram_batches, stream_batches, strict=True):
            assert xb.dtype == torch.uint8 and torch.equal(xa, xb) and torch.equal(ya, yb)
    assert in_ram.data_spec() == streamed.data_spec()
    x, _ = streamed.split_tensors("test")
    assert torch.equal(x[:], in_ram.split_tensors("test")[0][:])


def test_batches_normalise_as_the_whole_set_did_up_front(tmp_path):
    root, cache = tmp_path / "img", tmp_path / "cache"
    write_class_folders(root, CLASSES, shape=(3, 8, 8))
    dm = folder(root, cache)
    dm.setup()
    x_pool = torch.cat([dm._split["train"][0][torch.arange(len(dm._split["train"][0]))]])
    whole = x_pool.float().div_(255.0)  # the former way: the pool as float, normalised at once
    mean64 = whole.double().mean(dim=(0, 2, 3))
    std64 = whole.double().std(dim=(0, 2, 3))
    spec = dm.data_spec()
    assert np.allclose(spec["mean"], mean64.numpy(), rtol=0, atol=1e-7)  # exact up to float32 rounding
    assert np.allclose(spec["std"], std64.numpy(), rtol=0, atol=1e-7)
    mean, std = dm.normaliser.mean.reshape(1, -1, 1, 1), dm.normaliser.std.reshape(1, -1, 1, 1)
    assert torch.equal(dm.normalise(x_pool[:17]), (whole[:17] - mean) / std)  # bit for bit
    view, _ = dm.split_tensors("train")
    assert torch.equal(torch.cat(list(view.split(10))), view[:])
    assert torch.equal(view[torch.tensor([3, 1])], view[:][torch.tensor([3, 1])])
    assert view[2].shape == (3, 8, 8) and len(view) == view.shape[0] == dm.split_size("train")


class Batches(Callback):
    """The batches the training and validation steps receive (after normalisation and augmentation)."""

    def __init__(self):
        self.train, self.val = [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.train.append((batch[0].clone(), batch[2].clone()))

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self.val.append((batch[0].clone(), batch[2].clone()))


def test_streamed_training_batches_are_augmented_like_any_sets_and_validation_batches_are_not(tmp_path):
    root = tmp_path / "img"
    write_class_folders(root, CLASSES, shape=(3, 12, 12))
    config = OmegaConf.to_container(compose_train([
        "data=folder", f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}", "data.augment=affine",
        "data.in_memory=0", "data.num_workers=1", "data.batch_size=16", "model=mlp", "model.hidden_sizes=[8]"],
        tmp_path), resolve=True)
    parts = validate(config)
    dm = parts.datamodule
    dm.include_index = True  # batches carry (x, y, index) so they can be matched to the split
    seen = Batches()
    trainer = Trainer(max_epochs=1, num_sanity_val_steps=0, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False,
                      callbacks=[seen])
    trainer.fit(parts.module, datamodule=dm)
    assert isinstance(dm._decoded.images, MemmapImages)  # over the budget: read from the cache by the worker
    pool = dm._split["train"][0]
    assert seen.train and seen.val
    for x, index in seen.train:
        assert x.dtype == torch.float32 and x.shape == (len(index), 3, 12, 12)
        assert not torch.allclose(x, dm.normalise(pool[index]), atol=1e-3)  # every training batch is transformed
    for x, index in seen.val:
        assert torch.equal(x, dm.normalise(pool[index]))  # validation sees the images as they are


# -- unreadable files ----------------------------------------------------------------------------------

def test_an_unreadable_file_is_named_and_skip_bad_counts_it_instead(tmp_path, capsys):
    root, cache = tmp_path / "img", tmp_path / "cache"
    write_class_folders(root, CLASSES)
    good = (root / "ant" / "003.png").read_bytes()
    (root / "ant" / "003.png").write_bytes(good[: len(good) // 2])
    (root / "mole" / "notes.txt").write_text("not an image")
    with pytest.raises(ConfigError) as err:
        folder(root, cache).check_available()
    assert str(err.value).startswith(f"data.root: {root / 'ant' / '003.png'} is not a readable image (")
    assert "data.skip_bad=true" in str(err.value)
    dm = folder(root, cache, skip_bad=True)
    dm.setup()
    out = capsys.readouterr().err
    assert "data.skip_bad: skipped 2 of 61 files" in out and "ant/003.png" in out
    assert sum(dm.split_size(s) for s in ("train", "val", "test")) == 59
    bad = {dm._listing.files[i]: reason for i, reason in dm._decoded.bad.items()}
    assert bad["mole/notes.txt"] == "not a PNG, JPEG, BMP or WebP image"
    with pytest.raises(ConfigError, match="003.png is not a readable image"):
        folder(root, cache).check_available()  # the cache remembers the bad files; without skip_bad they stop it
