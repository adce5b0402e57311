"""Write the real MNIST test set (10,000 images) as a folder of PNG files, for data=folder.

    python bench/mnist_png.py --out DIR [--layout splits|classes] [--src PATH]

``splits`` (the default) writes DIR/train/<digit>/NNNNN.png for the first 8,000 images and
DIR/test/<digit>/NNNNN.png for the last 2,000: the same train and test images as bench/prepare_mnist.py
gives data=mnist, so ``data=folder data.root=DIR`` and ``data=mnist data.root=...`` train on the same
pixels. ``classes`` writes all 10,000 as DIR/<digit>/NNNNN.png (data=folder splits them itself).
NNNNN is the image's index in the t10k file. No network: the source is the official t10k files.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torchvision.io import write_png

from prepare_mnist import DEFAULT_SRC, IMAGE_MAGIC, IMAGES, LABEL_MAGIC, LABELS, N_TRAIN, read_idx


def write_pngs(src: Path, out: Path, layout: str) -> dict[str, int]:
    """Write the PNGs; returns how many went into each part."""
    missing = [src / name for name in (IMAGES, LABELS) if not (src / name).is_file()]
    if missing:
        raise SystemExit(f"error: MNIST source file missing: {missing[0]} (pass --src DIR holding {IMAGES} "
                         f"and {LABELS})")
    (n, rows, cols), pixels = read_idx(src / IMAGES, IMAGE_MAGIC)
    _, labels = read_idx(src / LABELS, LABEL_MAGIC)
    images = torch.from_numpy(np.frombuffer(pixels, dtype=np.uint8).reshape(n, 1, rows, cols).copy())
    counts: dict[str, int] = {}
    for i in range(n):
        part = "" if layout == "classes" else ("train" if i < N_TRAIN else "test")
        folder = out / part / str(labels[i])
        folder.mkdir(parents=True, exist_ok=True)
        write_png(images[i], str(folder / f"{i:05d}.png"))
        counts[part or "all"] = counts.get(part or "all", 0) + 1
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the folder to write (data.root)")
    parser.add_argument("--layout", choices=("splits", "classes"), default="splits")
    parser.add_argument("--src", type=Path, default=DEFAULT_SRC, help=f"folder with {IMAGES} and {LABELS}")
    args = parser.parse_args(argv)
    counts = write_pngs(args.src, args.out, args.layout)
    print(f"wrote {args.out}: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + " PNG images")


if __name__ == "__main__":
    main(sys.argv[1:])
