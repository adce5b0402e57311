"""Decode once: an image folder's pixels as one uint8 array on disk, reused by every later run.

An entry is two files in the cache folder, ``<name>-<key>.npy`` (N, C, H, W uint8, one row per file of
the listing, in its order) and ``<name>-<key>.json`` (shape, channels, size and the files that did not
decode). The key is a hash of the root, every file's path, size and mtime, and the channels and size
options: a file added, removed or changed, or another size, makes a new entry. Both files are written
under temporary names and renamed into place (the .json last, so an entry with a .json is whole); a
lock file makes a second run that starts meanwhile wait for the first and then read its entry.
"""

import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from archfuse.data.folder_scan import Listing
from archfuse.data.images import BadImage, read_image
from archfuse.data.storage import MemmapImages
from archfuse.errors import ConfigError
from archfuse.files import write_atomic, write_json_atomic

CACHE_VERSION = 1
WINDOW = 256  # files decoded ahead at a time (the decoders release the GIL: one thread per core)


@dataclass
class Decoded:
    """The folder's images: (N, C, H, W) uint8 in memory or memory-mapped; ``bad``: file index -> why it
    did not decode (its row is zeros)."""

    images: Tensor | MemmapImages
    bad: dict[int, str]
    channels: int
    size: tuple[int, int]
    path: Path


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "archfuse" / "images"


def cache_key(listing: Listing, channels: int | None, size: tuple[int, int] | None) -> str:
    """A hash of the root, the options, and every file's path, size and mtime (in nanoseconds)."""
    digest = hashlib.sha256(json.dumps([CACHE_VERSION, str(listing.root), channels, size]).encode())
    digest.update("\0".join(listing.files).encode())
    digest.update(np.asarray(listing.sizes, dtype=np.int64).tobytes())
    digest.update(np.asarray(listing.mtimes, dtype=np.int64).tobytes())
    return digest.hexdigest()[:24]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (waits for another process holding it); no lock where flock is missing.
    The lock file is removed before the lock is released: a run that waited on it then reads the entry (or
    decodes again after a failure), and one that starts later finds the entry, or no lock file."""
    try:
        import fcntl
    except ImportError:  # not POSIX: the atomic renames alone keep entries whole
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            path.unlink(missing_ok=True)
            fcntl.flock(f, fcntl.LOCK_UN)


def _read_entry(stem: Path, n: int, in_memory: bool) -> Decoded | None:
    meta_file, npy = stem.with_suffix(".json"), stem.with_suffix(".npy")
    try:
        meta = json.loads(meta_file.read_text())
        images = MemmapImages(npy)
    except (OSError, ValueError):
        return None
    if list(images.shape) != meta.get("shape") or meta["shape"][0] != n:
        return None  # not the entry its name says: decode again
    if in_memory:
        images = torch.from_numpy(np.load(npy))
    return Decoded(images, {int(k): v for k, v in meta["bad"].items()}, meta["channels"], tuple(meta["size"]), npy)


def load_or_decode(listing: Listing, channels: int | None, size: tuple[int, int] | None, cache_dir: Path,
                   skip_bad: bool, in_memory: bool | int) -> Decoded:
    """The folder's images from the cache, decoding them into it first when no entry has them.
    ``in_memory``: True (read into memory), False (memory-mapped) or a budget in bytes."""
    key = cache_key(listing, channels, size)
    stem = cache_dir / f"{listing.root.name or 'root'}-{key}"

    def fits(shape: list[int]) -> bool:
        return in_memory if isinstance(in_memory, bool) else int(np.prod(shape)) <= in_memory

    n = len(listing.files)
    found = _read_entry(stem, n, in_memory=False)
    if found is None:
        with _cache_folder(cache_dir), _locked(stem.with_suffix(".lock")):
            found = _read_entry(stem, n, in_memory=False)  # another run may have written it meanwhile
            if found is None:
                _decode_into(listing, channels, size, stem, skip_bad)
                found = _read_entry(stem, n, in_memory=False)
    if found is None:
        raise ConfigError("data.cache_dir", f"{stem}.npy could not be read back after writing it")
    if fits(list(found.images.shape)):
        found = _read_entry(stem, n, in_memory=True) or found
    if found.bad and not skip_bad:
        raise bad_file_error(listing, *next(iter(found.bad.items())))
    return found


@contextmanager
def _cache_folder(cache_dir: Path) -> Iterator[None]:
    """``cache_dir`` created for a new entry, and removed again (when it was created here and is still empty)
    if the entry cannot be made: bad input leaves nothing behind."""
    created = [p for p in (cache_dir, *cache_dir.parents) if not p.exists()]
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError("data.cache_dir", f"cannot create {cache_dir} ({err.strerror or err}); set "
                          "data.cache_dir to a writable folder") from None
    try:
        yield
    except BaseException:
        for folder in created:  # the deepest first
            try:
                folder.rmdir()
            except OSError:  # not empty: another run's entries, or a folder this one did not make
                break
        raise


def bad_file_error(listing: Listing, index: int, reason: str) -> ConfigError:
    return ConfigError("data.root", f"{listing.root / listing.files[index]} is not a readable image ({reason}); "
                       "remove it, or set data.skip_bad=true to skip such files (they are counted)")


def _decoded(listing: Listing, channels: int | None, size: tuple[int, int] | None):
    """(index, image or BadImage) of every file, in order, decoded by a few threads."""

    def one(i: int):
        try:
            return i, read_image(listing.root / listing.files[i], channels, size)
        except BadImage as err:
            return i, err

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for start in range(0, len(listing.files), WINDOW):
            yield from pool.map(one, range(start, min(start + WINDOW, len(listing.files))))


def _decode_into(listing: Listing, channels: int | None, size: tuple[int, int] | None, stem: Path,
                 skip_bad: bool) -> None:
    """Decode every file into ``stem``.npy and write ``stem``.json; nothing is left behind on an error."""
    started, n = time.perf_counter(), len(listing.files)
    print(f"data.root: decoding the {n} images of {listing.root} once, into {stem}.npy", file=sys.stderr, flush=True)
    state: dict = {"array": None, "first": None}
    bad: dict[int, str] = {}

    def write(tmp: str) -> None:
        for i, img in _decoded(listing, channels, size):
            if isinstance(img, BadImage):
                if not skip_bad:
                    raise bad_file_error(listing, i, str(img))
                bad[i] = str(img)
                continue
            _store(state, tmp, listing, i, img, n)
        if state["array"] is None:
            raise ConfigError("data.root", f"none of the {n} files under {listing.root} is a readable image "
                              f"(the first: {listing.files[0]}: {bad.get(0, '?')})")
        state["array"].flush()
        state["array"] = None

    write_atomic(stem.with_suffix(".npy"), write)
    c, h, w = state["shape"]
    write_json_atomic(stem.with_suffix(".json"), {
        "version": CACHE_VERSION, "root": str(listing.root), "shape": [n, c, h, w], "channels": c, "size": [h, w],
        "bad": {str(i): r for i, r in bad.items()}})
    print(f"data.root: {n - len(bad)} images decoded in {time.perf_counter() - started:.1f} s", file=sys.stderr,
          flush=True)


def _store(state: dict, tmp: str, listing: Listing, i: int, img: Tensor, n: int) -> None:
    """Row ``i`` of the array in ``tmp``, allocated at the first image; a colour image among grayscale
    ones (channels auto) turns the array to RGB, the grayscale rows repeated."""
    c, h, w = img.shape
    if state["array"] is None:
        state["array"] = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, c, h, w))
        state["first"], state["shape"] = i, (c, h, w)
    array = state["array"]
    if (h, w) != array.shape[2:]:
        first = listing.files[state["first"]]
        raise ConfigError("data.image_size", f"the images differ in size: {listing.root / first} is "
                          f"{array.shape[2]}x{array.shape[3]}, {listing.root / listing.files[i]} is {h}x{w}; set "
                          "data.image_size=H or [H,W] to resize them all")
    if c > array.shape[1]:  # only with channels auto: the first colour image
        rgb = np.lib.format.open_memmap(tmp + ".rgb", mode="w+", dtype=np.uint8, shape=(n, 3, h, w))
        rgb[:i] = array[:i]  # grayscale rows broadcast over the three channels
        rgb.flush()
        del array, state["array"]
        os.replace(tmp + ".rgb", tmp)
        state["array"] = array = np.lib.format.open_memmap(tmp, mode="r+")
        state["shape"] = (3, h, w)
    array[i] = img.numpy() if c == array.shape[1] else img.expand(array.shape[1], -1, -1).numpy()
