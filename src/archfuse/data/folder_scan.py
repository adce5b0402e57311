"""The files of an image folder, in one of two layouts, with their classes and splits.

- ``DIR/<class>/*``: one folder per class (data=folder splits them by val_fraction and test_fraction);
- ``DIR/train/<class>/*`` and ``DIR/test/<class>/*``, with ``DIR/val/<class>/*`` optional.

Classes are ordered by folder name; files by path within a class (subfolders included). Hidden files
and folders (a leading dot, as the image cache or .DS_Store) are ignored, as are files lying directly
in DIR (a README).
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

from archfuse.errors import ConfigError

SPLIT_FOLDERS = ("train", "val", "test")
LAYOUTS = "DIR/<class>/* (one folder per class) or DIR/train/<class>/* and DIR/test/<class>/* (val/ optional)"


@dataclass
class Listing:
    """Every image file under the root: its path (relative to the root), size, mtime, label and part
    ("all" in the class layout; "train", "val" or "test" in the split layout)."""

    root: Path
    classes: list[str]
    files: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    mtimes: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)

    @property
    def split_layout(self) -> bool:
        return bool(self.parts) and self.parts[0] != "all"

    def has_part(self, part: str) -> bool:
        return part in self.parts


def _visible(entries) -> list[os.DirEntry]:
    return sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)


def _folders(path: Path) -> list[str]:
    with os.scandir(path) as entries:
        return [e.name for e in _visible(entries) if e.is_dir()]


def _files(folder: str, relative: str) -> list[tuple[str, os.DirEntry]]:
    """(path relative to the root, entry) of every visible file under ``folder``, subfolders included, in
    path order. Plain strings, not pathlib: the scan runs on every start, for every file."""
    out = []
    with os.scandir(folder) as entries:
        for entry in _visible(entries):
            if entry.is_dir():
                out.extend(_files(entry.path, f"{relative}{entry.name}/"))
            elif entry.is_file():
                out.append((relative + entry.name, entry))
    return out


def _add_class_folders(listing: Listing, base: Path, part: str, classes: list[str]) -> None:
    prefix = "" if base == listing.root else f"{base.relative_to(listing.root).as_posix()}/"
    for label, name in enumerate(listing.classes):
        if name not in classes:
            continue
        found = _files(str(base / name), f"{prefix}{name}/")
        if not found:
            raise ConfigError("data.root", f"class folder {base / name} holds no images; add images or remove "
                              "the folder")
        stats = [entry.stat() for _, entry in found]
        listing.files.extend(relative for relative, _ in found)
        listing.sizes.extend(stat.st_size for stat in stats)
        listing.mtimes.extend(stat.st_mtime_ns for stat in stats)
        listing.labels.extend([label] * len(found))
        listing.parts.extend([part] * len(found))


def scan(root: str | Path) -> Listing:
    """The listing of ``root``; a ConfigError naming data.root when it is missing or holds no images."""
    root = Path(root).expanduser()
    if not root.exists():
        raise ConfigError("data.root", f"{root} does not exist; point data.root at a folder of images laid out as "
                          f"{LAYOUTS}")
    if not root.is_dir():
        raise ConfigError("data.root", f"{root} is not a folder; point data.root at a folder laid out as {LAYOUTS}")
    root = root.resolve()
    folders = _folders(root)
    if "train" in folders or "test" in folders:
        return _scan_splits(root, folders)
    if not folders:
        raise ConfigError("data.root", f"{root} has no class folders; lay the images out as {LAYOUTS}")
    listing = Listing(root, folders)
    _add_class_folders(listing, root, "all", folders)
    return listing


def _scan_splits(root: Path, folders: list[str]) -> Listing:
    for needed in ("train", "test"):
        if needed not in folders:
            raise ConfigError("data.root", f"{root} has {'test' if needed == 'train' else 'train'}/ but no "
                              f"{needed}/; the split layout needs both (val/ optional), or lay the images out as "
                              "DIR/<class>/* to have them split")
    others = [f for f in folders if f not in SPLIT_FOLDERS]
    if others:
        raise ConfigError("data.root", f"{root} has train/ and test/ and also {others[0]}/; in the split layout "
                          "DIR holds only train/, val/ and test/")
    parts = [p for p in SPLIT_FOLDERS if p in folders]
    per_part = {p: _folders(root / p) for p in parts}
    if not per_part["train"]:
        raise ConfigError("data.root", f"{root / 'train'} has no class folders; lay the images out as {LAYOUTS}")
    listing = Listing(root, per_part["train"])
    for part in parts:
        unknown = [c for c in per_part[part] if c not in listing.classes]
        if unknown:
            raise ConfigError("data.root", f"{root / part / unknown[0]} is a class that {root / 'train'} does not "
                              "have; every class needs training images")
        _add_class_folders(listing, root / part, part, per_part[part])
    return listing
