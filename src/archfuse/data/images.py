"""One image file as a uint8 tensor (C, H, W): decoded, given its channels, resized.

PNG, JPEG, WebP (and GIF) are decoded by torchvision.io; BMP, which torchvision.io does not decode,
by Pillow. This is how data=folder reads its images, and how a new image must be read to look like them.
"""

import io
import re
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms.v2 import functional as TF

# torchvision 0.29 announces that its decoders will move to TorchCodec, on every call: a notice about
# torchvision's plans, not about the user's data or code.
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision are deprecated",
                        category=DeprecationWarning)

FORMATS = "PNG, JPEG, BMP or WebP"
_MODES = {1: ImageReadMode.GRAY, 3: ImageReadMode.RGB}


class BadImage(Exception):
    """A file that is not a readable image; the message says why."""


def _reason(err: Exception) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    text = re.sub(r"^.*?\.cpp:\d+, ", "", text)  # torchvision's C++ location prefix
    if text.startswith("Unsupported image file"):
        return f"not a {FORMATS} image"
    return text[:160]


def _decode_bmp(data: bytes, channels: int | None) -> Tensor:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        if channels is None:  # a palette image becomes RGB; decode() sees whether it is grayscale
            channels = 1 if img.mode in ("1", "L", "LA", "I", "I;16") else 3
        array = np.asarray(img.convert("L" if channels == 1 else "RGB"))
    array = array[:, :, None] if array.ndim == 2 else array
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def decode(data: bytes, channels: int | None) -> Tensor:
    """The image in ``data`` as (C, H, W) uint8 (a 16-bit image scaled to 8 bits). ``channels`` 1 (grayscale)
    or 3 (RGB) converts it; None keeps it as stored: 1 channel for a grayscale image, 3 for a colour one
    (alpha dropped). An RGB image whose three channels are equal is grayscale (WebP stores grayscale that
    way)."""
    try:
        if data[:2] == b"BM":
            img = _decode_bmp(data, channels)
        else:
            tensor = torch.frombuffer(bytearray(data), dtype=torch.uint8)
            if data[:4] == b"RIFF" and data[8:12] == b"WEBP":  # no grayscale mode in torchvision's WebP decoder
                img = decode_image(tensor, mode=ImageReadMode.RGB)
            elif channels is not None:
                img = decode_image(tensor, mode=_MODES[channels])
            else:
                img = decode_image(tensor, mode=ImageReadMode.UNCHANGED)
                if img.shape[0] == 2:  # grayscale + alpha
                    img = img[:1]
                elif img.shape[0] == 4:  # RGBA (or a CMYK JPEG): torchvision's own conversion
                    img = decode_image(tensor, mode=ImageReadMode.RGB)
    except Exception as err:  # the decoders raise RuntimeError, Pillow its own types
        raise BadImage(_reason(err)) from None
    if img.dtype != torch.uint8:  # a 16-bit PNG: its top 8 bits, as every 8-bit viewer shows it
        img = TF.to_dtype(img, torch.uint8, scale=True)
    if channels is None and img.shape[0] == 3 and torch.equal(img[0], img[1]) and torch.equal(img[1], img[2]):
        img = img[:1]
    return to_channels(img, channels or img.shape[0]).contiguous()


def to_channels(img: Tensor, channels: int) -> Tensor:
    """A decoded image with ``channels`` channels (grayscale repeated to RGB, RGB to grayscale)."""
    if img.shape[0] == channels:
        return img
    if channels == 3:
        return img.expand(3, -1, -1)
    return TF.rgb_to_grayscale(img, num_output_channels=1)


def resize(img: Tensor, size: tuple[int, int] | None) -> Tensor:
    """``img`` resized to ``size`` (H, W), bilinear with antialiasing, still uint8; None keeps it."""
    if size is None or tuple(img.shape[-2:]) == tuple(size):
        return img
    return TF.resize(img, list(size), interpolation=TF.InterpolationMode.BILINEAR, antialias=True)


def read_image(path: str | Path, channels: int | None, size: tuple[int, int] | None) -> Tensor:
    """The image file at ``path`` as (channels, H, W) uint8, resized to ``size``; BadImage if unreadable.
    With ``channels`` 1 or 3 and a size this is exactly what data=folder stores for the file."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise BadImage(err.strerror or str(err)) from None
    if not data:
        raise BadImage("the file is empty")
    return resize(decode(data, channels), size)
