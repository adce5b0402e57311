"""Image files read as the training data were (archfuse.data.images: decoded, converted to the data's
channels, resized to its image size on the 8-bit pixels), then scaled to [0, 1].

A damaged file is reported, not printed: the native decoders (libpng, libjpeg) write their complaint to
the process's stderr, which is caught while a file is decoded and becomes the reason the file is listed.
"""

import os
import sys
import tempfile
from pathlib import Path

from torch import Tensor

from archfuse.data.images import FORMATS, BadImage
from archfuse.data.images import read_image as read_uint8


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


def read_image(path: Path, channels: int, size: list[int], native: NativeStderr) -> Tensor:
    """The image as float (C, H, W) in [0, 1], at the data's channels and size, read exactly as data=folder
    reads it (archfuse.data.images); Unreadable says why not, in the native decoder's words where it
    wrote any."""
    try:
        with native:
            image = read_uint8(path, channels, tuple(size))
    except BadImage as err:
        said, reason = native.taken(), str(err)
        if not reason.startswith("not a ") and reason != "the file is empty":
            reason = f"not a readable {FORMATS} image ({said[:200] or reason})"
        raise Unreadable(reason) from None
    native.taken()  # a warning about a file that decoded is not the user's concern
    return image.float() / 255.0
