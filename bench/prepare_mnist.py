"""Turn the real MNIST test set (10,000 images) into a small torchvision ``MNIST/raw`` folder.

The first 8,000 images become the training files and the last 2,000 the test files, written as
uncompressed IDX so ``torchvision.datasets.MNIST(root, download=False)`` reads them as they are.
No network: the source is the two t10k files of the official release.

    python bench/prepare_mnist.py --out DIR [--src PATH]     # then: data.root=DIR
"""

import argparse
import gzip
import struct
import sys
from pathlib import Path

IMAGES, LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049  # IDX: unsigned bytes, 3 dims / 1 dim
DEFAULT_SRC = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mnist-t10k"
N_TRAIN = 8000


def read_idx(path: Path, magic: int) -> tuple[tuple[int, ...], bytes]:
    """The dims and raw pixel/label bytes of one gzipped IDX file, checked against its header."""
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    ndim = magic % 256
    got, *dims = struct.unpack(f">{1 + ndim}I", data[: 4 * (1 + ndim)])
    if got != magic:
        raise SystemExit(f"error: {path} is not an IDX file with magic {magic} (found {got})")
    body = data[4 * (1 + ndim):]
    expected = dims[0] * (dims[1] * dims[2] if ndim == 3 else 1)
    if len(body) != expected:
        raise SystemExit(f"error: {path} is truncated: {len(body)} bytes of data, header says {expected}")
    return tuple(dims), body


def write_idx(path: Path, magic: int, dims: tuple[int, ...], body: bytes) -> None:
    path.write_bytes(struct.pack(f">{1 + len(dims)}I", magic, *dims) + body)


def prepare(src: Path, out: Path, n_train: int = N_TRAIN) -> tuple[int, int]:
    """Write ``out/MNIST/raw``; returns (train, test) image counts."""
    missing = [src / name for name in (IMAGES, LABELS) if not (src / name).is_file()]
    if missing:
        raise SystemExit(f"error: MNIST source file missing: {missing[0]} (pass --src DIR holding {IMAGES} "
                         f"and {LABELS})")
    (n, rows, cols), pixels = read_idx(src / IMAGES, IMAGE_MAGIC)
    (n_labels,), labels = read_idx(src / LABELS, LABEL_MAGIC)
    if n != n_labels:
        raise SystemExit(f"error: {n} images but {n_labels} labels in {src}")
    if not 0 < n_train < n:
        raise SystemExit(f"error: cannot take {n_train} training images out of {n}")
    raw = out / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    size = rows * cols
    parts = {"train": (0, n_train), "t10k": (n_train, n)}
    for prefix, (lo, hi) in parts.items():
        write_idx(raw / f"{prefix}-images-idx3-ubyte", IMAGE_MAGIC, (hi - lo, rows, cols), pixels[lo * size: hi * size])
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", LABEL_MAGIC, (hi - lo,), labels[lo:hi])
    return n_train, n - n_train


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="root to use as data.root (MNIST/raw is created)")
    parser.add_argument("--src", type=Path, default=DEFAULT_SRC, help=f"folder with {IMAGES} and {LABELS}")
    args = parser.parse_args(argv)
    n_train, n_test = prepare(args.src, args.out)
    print(f"wrote {args.out / 'MNIST' / 'raw'}: {n_train} train, {n_test} test images")


if __name__ == "__main__":
    main(sys.argv[1:])
