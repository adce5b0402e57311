"""archfuse-train data=folder through the real command line, on image files the tests write: a run that
records the data spec in its checkpoints and summary.json, and every kind of bad input refused before
training with exit code 2 and one line naming the key or the file."""

import subprocess
import sys

import pytest
import torch

from archfuse.checkpoint import RECORD_KEY
from conftest import REPO, SHARED_MNIST, cli_env, run_cli, run_dirs, summary
from image_files import pixels, write_class_folders, write_image

QUICK = ["trainer.max_epochs=1", "quiet=true", "model=mlp", "model.hidden_sizes=[16]", "cost.repeats=2",
         "cost.warmup=1", "trainer.num_threads=1"]


def folder_args(root, cache) -> list[str]:
    return ["data=folder", f"data.root={root}", f"data.cache_dir={cache}"]


def test_a_run_records_the_data_spec_in_its_checkpoints_and_summary(tmp_path):
    root = tmp_path / "img"
    write_class_folders(root / "train", {"cat": 12, "dog": 12}, shape=(3, 10, 10), suffix=".png")
    write_class_folders(root / "test", {"cat": 4, "dog": 4}, shape=(3, 10, 10), suffix=".jpg", seed=77)
    proc = run_cli(tmp_path, *folder_args(root, tmp_path / "cache"), *QUICK, "data.image_size=[8,6]",
                   "data.augment=affine", "recipe=prune", "recipe.prune.fine_tune_epochs=0",
                   "keep_last_ckpt=true")
    assert "data.root: decoding the 32 images of" in proc.stderr
    assert "2 classes (cat, dog); images 3x8x6" in proc.stdout  # the printed summary
    (run_dir,) = run_dirs(tmp_path)
    result = summary(run_dir)
    spec = result["data"]
    assert spec["classes"] == ["cat", "dog"]
    assert (spec["input_shape"], spec["channels"], spec["image_size"]) == ([3, 8, 6], 3, [8, 6])
    assert len(spec["mean"]) == len(spec["std"]) == 3 and all(0 < s < 1 for s in spec["std"])
    assert result["metrics"]["test/samples"] == 8
    for name in ("best.ckpt", "last.ckpt", "final.ckpt"):
        ckpt = torch.load(run_dir / "checkpoints" / name, map_location="cpu", weights_only=True)
        assert ckpt[RECORD_KEY]["data"] == spec, name


def test_skip_bad_trains_without_the_unreadable_files_and_counts_them(tmp_path):
    root = tmp_path / "img"
    write_class_folders(root, {"a": 10, "b": 10})
    (root / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    proc = run_cli(tmp_path, *folder_args(root, tmp_path / "cache"), *QUICK, "data.skip_bad=true",
                   "data.test_fraction=0.2", "data.val_fraction=0.2", "data.channels=3", "data.in_memory=0",
                   "data.num_workers=1")
    assert "data.skip_bad: skipped 1 of 21 files that are not readable images (the first: b/broken.png" in proc.stderr
    (run_dir,) = run_dirs(tmp_path)
    result = summary(run_dir)
    assert result["metrics"]["test/samples"] == 4
    assert result["data"]["input_shape"] == [3, 12, 10]  # grayscale files read as RGB: data.channels=3
    # A second run reads the cache (the unreadable file is remembered) and decodes nothing.
    proc = run_cli(tmp_path, *folder_args(root, tmp_path / "cache"), *QUICK, "data.skip_bad=true",
                   "data.test_fraction=0.2", "data.val_fraction=0.2", "data.channels=3")
    assert "decoding" not in proc.stderr and "data.skip_bad: skipped 1 of 21 files" in proc.stderr


def _bad_folder(tmp_path, case: str):
    """A folder with one kind of problem; returns (extra overrides, data.root)."""
    root = tmp_path / "img"
    if case == "missing":
        return [], root
    root.mkdir()
    if case == "no_classes":
        (root / "readme.txt").write_text("no class folders here")
        return [], root
    if case == "split_too_few":
        write_class_folders(root / "train", {"a": 10, "b": 1})
        write_class_folders(root / "test", {"a": 2, "b": 2}, seed=40)
        return [], root
    write_class_folders(root, {"a": 10, "b": 10})
    if case == "empty_class":
        (root / "c").mkdir()
    elif case == "truncated":
        data = (root / "a" / "004.png").read_bytes()
        (root / "a" / "004.png").write_bytes(data[:40])
    elif case == "not_an_image":
        (root / "b" / "labels.csv").write_text("file,label\n")
    elif case == "mixed_sizes":
        write_image(root / "b" / "large.png", pixels((1, 20, 20), 3))
    elif case == "too_few":
        return ["data.test_fraction=0.05"], root
    elif case == "folds":
        return ["cv.folds=9", "data.test_fraction=0.2", "data.val_fraction=0.2"], root
    return [], root


CASES = {
    "missing": ("data.root", "{root} does not exist; point data.root at a folder of images laid out as"),
    "no_classes": ("data.root", "{root} has no class folders; lay the images out as DIR/<class>/*"),
    "empty_class": ("data.root", "class folder {root}/c holds no images; add images or remove the folder"),
    "truncated": ("data.root", "{root}/a/004.png is not a readable image ("),
    "not_an_image": ("data.root", "{root}/b/labels.csv is not a readable image (not a PNG, JPEG, BMP or WebP image); "
                                  "remove it, or set data.skip_bad=true to skip such files (they are counted)"),
    "mixed_sizes": ("data.image_size", "the images differ in size: {root}/a/000.png is 12x10, {root}/b/large.png is "
                                       "20x20; set data.image_size=H or [H,W] to resize them all"),
    "too_few": ("data.test_fraction", "0.05 of the 20 images of the folder is 1, but a stratified split needs at "
                                      "least as many images as the 2 classes on each side"),
    "split_too_few": ("data.val_fraction", "class 'b' has 1 image(s) in train/; a stratified split needs at least 2 "
                                           "of every class"),
    "folds": ("cv.folds", "9 folds need at least 9 images of every class, but the smallest class of the training "
                          "pool has 8; use cv.folds<=8"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_before_training_in_one_line(tmp_path, case):
    extra, root = _bad_folder(tmp_path, case)
    proc = run_cli(tmp_path, *folder_args(root, tmp_path / "cache"), *QUICK, *extra, check=False)
    key, text = CASES[case]
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("archfuse-train: error:")]
    assert lines == [f"archfuse-train: error: {key}: " + lines[0].split(f"{key}: ", 1)[1]], proc.stderr[-2000:]
    assert text.format(root=root) in lines[0]
    assert "Traceback" not in proc.stderr
    if case == "truncated":
        assert "set data.skip_bad=true to skip such files (they are counted)" in lines[0]
    assert not (tmp_path / "outputs").exists() or not run_dirs(tmp_path)  # nothing that looks like a run
    if case not in ("too_few", "split_too_few", "folds"):  # those decode first: the cache is whole and kept
        assert not (tmp_path / "cache").exists()  # no half-written cache entry, lock or folder


def test_data_root_is_required(tmp_path):
    proc = run_cli(tmp_path, "data=folder", *QUICK, check=False)
    assert proc.returncode == 2
    assert "archfuse-train: error: data.root: missing: data=folder needs the folder of images, data.root=DIR" \
        in proc.stderr


# -- MNIST-10k as PNG files: the same pixels as data=mnist -------------------------------------------

def test_mnist_pngs_hold_the_pixels_and_statistics_data_mnist_has(tmp_path):
    if not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST not found at {SHARED_MNIST}")
    from conftest import data_module

    for script, out in (("mnist_png.py", tmp_path / "png"), ("prepare_mnist.py", tmp_path / "idx")):
        proc = subprocess.run([sys.executable, str(REPO / "bench" / script), "--out", str(out)], env=cli_env(),
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
    assert "8000 train, 2000 test PNG images" in proc.stdout or (tmp_path / "png" / "train").is_dir()
    png = data_module("folder", root=str(tmp_path / "png"), cache_dir=str(tmp_path / "cache"))
    idx = data_module("mnist", root=str(tmp_path / "idx"))
    png.setup(), idx.setup()
    spec, reference = png.data_spec(), idx.data_spec()
    assert (spec["mean"], spec["std"], spec["input_shape"]) == (reference["mean"], reference["std"],
                                                                 reference["input_shape"])
    # The same images in every part (the PNGs are named by their index in the t10k file): the test split,
    # and the training pool that validation is carved from (the same share, stratified).
    def t10k_index(storage, first: int) -> torch.Tensor:
        return torch.tensor([int(png._listing.files[i].rsplit("/", 1)[1][:5]) - first for i in storage.index.tolist()])

    for part, first in (("test", 8000), ("train", 0)):
        stored = png._split[part][0]
        order = t10k_index(stored, first)
        assert torch.equal(stored[torch.arange(len(stored))], idx._split[part][0][order]), part
        assert torch.equal(png._labels[part], idx._labels[part][order]), part
    for split in ("train", "val", "test"):
        assert png.split_size(split) == idx.split_size(split), split
        assert torch.equal(png.split_tensors(split)[1].bincount(), idx.split_tensors(split)[1].bincount()), split
