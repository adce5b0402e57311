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
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from archfuse.build import build_datamodule  # noqa: E402
from archfuse.config_dir import config_dir  # noqa: E402
from archfuse.data.folder import FolderDataModule  # noqa: E402
from archfuse.data.folder_scan import scan  # noqa: E402
from archfuse.data.image_cache import load_or_decode  # noqa: E402
from mnist_png import DEFAULT_SRC, write_pngs  # noqa: E402


def module(root: Path, cache_dir: Path) -> FolderDataModule:
    """data=folder as conf/data/folder.yaml sets it up, on ``root`` with its cache in ``cache_dir``."""
    node = OmegaConf.to_container(OmegaConf.load(Path(config_dir()) / "data" / "folder.yaml"))
    return build_datamodule({"data": {**node, "root": str(root), "cache_dir": str(cache_dir)}})


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, help="a folder of images (default: MNIST-10k written as PNGs)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="archfuse-folder-cache-") as work:
        run(Path(work), args.root, args.repeats)


def run(work: Path, root: Path | None, repeats: int) -> None:
    if root is None:
        root = work / "mnist-png"
        write_pngs(DEFAULT_SRC, root, "splits")
    n = len(scan(root).files)
    print(f"{n} images under {root}; torch threads {torch.get_num_threads()}", flush=True)
    # The module's whole start (scan, then decode or read), and the decode or read alone.
    decoded = [timed(lambda i=i: module(root, work / f"cache{i}").check_available()) for i in range(repeats)]
    cached = [timed(lambda: module(root, work / "cache0").check_available()) for _ in range(repeats)]
    listing = scan(root)
    options = dict(channels=None, size=None, skip_bad=False, in_memory=True)
    decode_only = [timed(lambda i=i: load_or_decode(listing, cache_dir=work / f"only{i}", **options))
                   for i in range(repeats)]
    read_only = [timed(lambda: load_or_decode(listing, cache_dir=work / "only0", **options))
                 for _ in range(repeats)]
    scans = [timed(lambda: scan(root)) for _ in range(repeats)]
    images = load_or_decode(listing, cache_dir=work / "only0", **options).images
    print(f"decoded array: {tuple(images.shape)} {images.dtype} ({images.numel() / 2**20:.1f} MiB)")
    med = statistics.median
    print(f"scan (every file's size and mtime: the cache key), both sides: {med(scans):.3f} s")
    print(f"decode every file and write the cache:  {med(decode_only):.3f} s  ({n / med(decode_only):,.0f} images/s)")
    print(f"read the cache:                         {med(read_only):.3f} s  ({n / med(read_only):,.0f} images/s)")
    print(f"  ratio {med(decode_only) / med(read_only):.0f}x")
    print(f"whole start of the data module (scan, decode or read, split sizes checked), median of {repeats}:")
    print(f"first run  {med(decoded):.3f} s;  later runs  {med(cached):.3f} s;  "
          f"ratio {med(decoded) / med(cached):.1f}x")


if __name__ == "__main__":
    main(sys.argv[1:])
