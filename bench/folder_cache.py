"""Decode once: how long data=folder takes to get 10,000 PNG images ready, decoding them (the first run)
against reading its uint8 cache (every later run).

    python bench/folder_cache.py [--root DIR] [--repeats 5]

Without --root it writes the real MNIST test set as PNGs first (bench/mnist_png.py, ../shared/data).
Each side is the data module's own start: scan the folder (every file's size and mtime, the cache's
key), then decode every file and write the cache, or read the cache. Fresh cache folders for the
decoding side; the medians of ``--repeats`` runs are printed, and their ratio.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from archfuse.data.folder import FolderDataModule
from archfuse.data.folder_scan import scan
from archfuse.data.image_cache import load_or_decode
from mnist_png import DEFAULT_SRC, write_pngs


def module(root: Path, cache_dir: Path) -> FolderDataModule:
    options = dict(root=str(root), test_fraction=0.1, channels="auto", image_size=None, skip_bad=False,
                   in_memory=2048, cache_dir=str(cache_dir), batch_size=128, num_workers=0, val_fraction=0.1,
                   train_subset=None, seed=0, augment="none", shift=0.1, rotation=10.0, scale=0.1, shear=5.0)
    return FolderDataModule(**options)


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, help="a folder of images (default: MNIST-10k written as PNGs)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="archfuse-folder-cache-"))
    root = args.root
    if root is None:
        root = work / "mnist-png"
        write_pngs(DEFAULT_SRC, root, "splits")
    n = len(scan(root).files)
    print(f"{n} images under {root}; torch threads {torch.get_num_threads()}", flush=True)
    # The module's whole start (scan, then decode or read), and the decode or read alone.
    decoded = [timed(lambda i=i: module(root, work / f"cache{i}").check_available()) for i in range(args.repeats)]
    cached = [timed(lambda: module(root, work / "cache0").check_available()) for _ in range(args.repeats)]
    listing = scan(root)
    options = dict(channels=None, size=None, skip_bad=False, in_memory=True)
    decode_only = [timed(lambda i=i: load_or_decode(listing, cache_dir=work / f"only{i}", **options))
                   for i in range(args.repeats)]
    read_only = [timed(lambda: load_or_decode(listing, cache_dir=work / "only0", **options))
                 for _ in range(args.repeats)]
    scans = [timed(lambda: scan(root)) for _ in range(args.repeats)]
    images = load_or_decode(listing, cache_dir=work / "only0", **options).images
    print(f"decoded array: {tuple(images.shape)} {images.dtype} ({images.numel() / 2**20:.1f} MiB)")
    med = statistics.median
    print(f"scan (every file's size and mtime: the cache key), both sides: {med(scans):.3f} s")
    print(f"decode every file and write the cache:  {med(decode_only):.3f} s  ({n / med(decode_only):,.0f} images/s)")
    print(f"read the cache:                         {med(read_only):.3f} s  ({n / med(read_only):,.0f} images/s)")
    print(f"  ratio {med(decode_only) / med(read_only):.0f}x")
    print(f"whole start of the data module (scan, decode or read, split sizes checked), median of {args.repeats}:")
    print(f"first run  {med(decoded):.3f} s;  later runs  {med(cached):.3f} s;  "
          f"ratio {med(decoded) / med(cached):.1f}x")

if __name__ == "__main__":
    main(sys.argv[1:])
