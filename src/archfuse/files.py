"""Files written atomically: to a temporary file beside the target, then renamed over it, so a reader
(or a run resumed after a kill) never sees half a file."""

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def write_atomic(path: str | Path, write: Callable[[str], None]) -> None:
    """``write(tmp_path)`` fills a temporary file, which then replaces ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        mask = os.umask(0)  # mkstemp makes the file private (0600); give it a new file's usual mode
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, payload: dict[str, Any]) -> None:
    """``payload`` as indented JSON (values JSON has no type for as their text)."""

    def dump(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(payload, f, indent=2, default=str)

    write_atomic(path, dump)


@contextmanager
def folders_removed_on_failure(folder: str | Path) -> Iterator[None]:
    """The folders on the way to ``folder`` that do not exist yet are removed again, where still empty,
    when the body fails: a failed write leaves nothing behind, not even the folders made for it."""
    folder = Path(folder).absolute()
    missing = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
    try:
        yield
    except BaseException:
        for p in missing:
            try:
                p.rmdir()
            except OSError:
                break
        raise
