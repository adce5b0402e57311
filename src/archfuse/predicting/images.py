"""Image files read as the training data were: decoded (PNG, JPEG, WebP by torchvision.io, BMP and what
else it cannot read by Pillow), converted to the data's channels (1: grayscale, 3: RGB), resized to its
image size (bilinear, antialiased, on the 8-bit pixels) and scaled to [0, 1]."""

from pathlib import Path

import torch
from torch import Tensor


class Unreadable(Exception):
    """A file that is not a readable image; the message says why."""


def _decode(path: Path, channels: int) -> Tensor:
    """uint8 (C, H, W) of the file, converted to ``channels``."""
    from torchvision.io import ImageReadMode, decode_image

    try:
        return decode_image(str(path), mode=ImageReadMode.GRAY if channels == 1 else ImageReadMode.RGB)
    except Exception:  # not a format torchvision decodes (BMP), or a damaged file: Pillow, which says why
        pass
    try:
        import numpy as np
        from PIL import Image

        with Image.open(path) as image:
            array = np.asarray(image.convert("L" if channels == 1 else "RGB"))
    except Exception as err:
        reason = str(err).replace(f"'{path}'", "").replace(str(path), "").strip() or type(err).__name__
        raise Unreadable(f"not a readable PNG, JPEG, BMP or WebP image ({reason})") from None
    tensor = torch.from_numpy(array.copy())
    return tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()


def read_image(path: Path, channels: int, size: list[int]) -> Tensor:
    """The image as float (C, H, W) in [0, 1], at the data's channels and size."""
    from torchvision.transforms.v2.functional import InterpolationMode, resize

    image = _decode(path, channels)
    if list(image.shape[-2:]) != list(size):
        image = resize(image, list(size), interpolation=InterpolationMode.BILINEAR, antialias=True)
    return image.float() / 255.0
