"""Real image files for the data=folder tests: PNG and JPEG written by torchvision.io, BMP and WebP by
Pillow, each with known pixels."""

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.io import encode_jpeg, write_png


def pixels(shape: tuple[int, int, int], seed: int) -> torch.Tensor:
    """(C, H, W) uint8 pixels of one test image, fixed by ``seed``."""
    return torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def write_image(path: Path, img: torch.Tensor) -> Path:
    """``img`` (C, H, W uint8) in the format the suffix names: .png, .jpg, .bmp or .webp (lossless)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".png":
        write_png(img, str(path))
    elif suffix in (".jpg", ".jpeg"):
        path.write_bytes(encode_jpeg(img, quality=95).numpy().tobytes())
    else:
        array = img[0].numpy() if img.shape[0] == 1 else img.permute(1, 2, 0).numpy()
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(array)).save(buffer, "WEBP" if suffix == ".webp" else "BMP",
                                                          **({"lossless": True} if suffix == ".webp" else {}))
        path.write_bytes(buffer.getvalue())
    return path


def write_class_folders(root: Path, classes: dict[str, int], shape=(1, 12, 10), suffix: str = ".png",
                        seed: int = 0) -> dict[str, torch.Tensor]:
    """``count`` images per class under root/<class>/; returns {relative path: pixels}."""
    written = {}
    for c, (name, count) in enumerate(classes.items()):
        for i in range(count):
            img = pixels(shape, seed + 1000 * c + i)
            rel = f"{name}/{i:03d}{suffix}"
            write_image(root / rel, img)
            written[rel] = img
    return written
