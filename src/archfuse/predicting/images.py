"""Image files read as the training data were: decoded (PNG, JPEG and WebP by torchvision.io, BMP by
Pillow), converted to the data's channels (1: grayscale, 3: RGB), resized to its image size (bilinear,
antialiased, on the 8-bit pixels) and scaled to [0, 1].

A damaged file is reported, not printed: the native decoders (libpng, libjpeg) write their complaint to
the process's stderr, which is caught while a file is decoded and becomes the reason the file is listed.
"""

import io
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path

import torch
from torch import Tensor

# torchvision 0.29 announces that its decoders will move to TorchCodec, on every call: a notice about
# torchvision's plans, not about the user's images.
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision are deprecated",
                        category=DeprecationWarning)

FORMATS = "PNG, JPEG, BMP or WebP"


class Unreadable(Exception):
    """A file that is not a readable image; the message says why."""


class NativeStderr:
    """Catches what native code writes to file descriptor 2 while a file is decoded. Nothing else may
    write to stderr meanwhile (the progress bar refreshes between files, not from a thread)."""

    def __init__(self):
        self.sink = tempfile.TemporaryFile()

    def __enter__(self) -> "NativeStderr":
        sys.stderr.flush()
        self.saved = os.dup(2)
        os.dup2(self.sink.fileno(), 2)
        return self

    def __exit__(self, *exc) -> None:
        os.dup2(self.saved, 2)
        os.close(self.saved)

    def taken(self) -> str:
        """What was caught since the last call (first line), and forget it."""
        self.sink.seek(0)
        text = self.sink.read().decode(errors="replace").strip()
        self.sink.seek(0)
        self.sink.truncate()
        return text.splitlines()[0] if text else ""

    def close(self) -> None:
        self.sink.close()


def _reason(err: Exception, native: str) -> str:
    """Why a file did not decode: the native decoder's own line where it wrote one, else the error's."""
    if native:
        return native[:200]
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    text = re.sub(r"^.*?\.cpp:\d+, ", "", text)  # torchvision's C++ location prefix
    text = re.sub(r" <_io\.BytesIO object at 0x[0-9a-f]+>", "", text)  # Pillow names the buffer it read
    return text[:200]


def _decode_bmp(data: bytes, channels: int) -> Tensor:
    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        array = np.asarray(img.convert("L" if channels == 1 else "RGB"))
    array = array[:, :, None] if array.ndim == 2 else array
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def _to_channels(img: Tensor, channels: int) -> Tensor:
    from torchvision.transforms.v2 import functional as TF

    if img.shape[0] == channels:
        return img
    if channels == 3:
        return img.expand(3, -1, -1)
    return TF.rgb_to_grayscale(img, num_output_channels=1)


def decode(data: bytes, channels: int, native: NativeStderr) -> Tensor:
    """The image in ``data`` as (channels, H, W) uint8."""
    from torchvision.io import ImageReadMode, decode_image

    try:
        with native:
            if data[:2] == b"BM":
                img = _decode_bmp(data, channels)
            else:
                tensor = torch.frombuffer(bytearray(data), dtype=torch.uint8)
                webp = data[:4] == b"RIFF" and data[8:12] == b"WEBP"  # no grayscale mode in the WebP decoder
                mode = ImageReadMode.RGB if webp or channels == 3 else ImageReadMode.GRAY
                img = decode_image(tensor, mode=mode)
    except Exception as err:  # the decoders raise RuntimeError, Pillow its own types
        reason = _reason(err, native.taken())
        if reason.startswith("Unsupported image file"):
            raise Unreadable(f"not a {FORMATS} image") from None
        raise Unreadable(f"not a readable {FORMATS} image ({reason})") from None
    native.taken()  # a warning about a file that decoded is not the user's concern
    return _to_channels(img, channels).contiguous()


def read_image(path: Path, channels: int, size: list[int], native: NativeStderr) -> Tensor:
    """The image as float (C, H, W) in [0, 1], at the data's channels and size; Unreadable says why not."""
    from torchvision.transforms.v2.functional import InterpolationMode, resize

    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise Unreadable(err.strerror or str(err)) from None
    if not data:
        raise Unreadable("the file is empty")
    image = decode(data, channels, native)
    if list(image.shape[-2:]) != list(size):
        image = resize(image, list(size), interpolation=InterpolationMode.BILINEAR, antialias=True)
    return image.float() / 255.0
