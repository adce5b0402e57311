"""Checks of option values: counts, numbers in a range, choices among names and files that must exist.

Each check raises ConfigError(key, message) naming the option, and returns the value unchanged when it
passes. Most messages read ``must be WHAT, got VALUE``; ``what`` phrases WHAT where the default (built
from the bounds) does not say enough, e.g. ``what="a positive integer (the number of members)"``. A check
whose message has another shape tests with :func:`is_int` / :func:`is_number` and raises its own
ConfigError, or :func:`must_be` for the usual shape.

A bool is never a count or a number here, although Python's bool is an int: ``size: true`` is a mistake.
"""

import errno
import os
import tempfile
from pathlib import Path
from typing import Any

from archfuse.errors import ConfigError


def must_be(key: str, what: str, value: Any) -> ConfigError:
    """The error ``KEY: must be WHAT, got VALUE`` (the value as repr), for the caller to raise."""
    return ConfigError(key, f"must be {what}, got {value!r}")


def is_int(value: Any, minimum: int | None = None) -> bool:
    """An int, not a bool, and at least ``minimum`` when one is given."""
    return isinstance(value, int) and not isinstance(value, bool) and (minimum is None or value >= minimum)


def is_number(value: Any, low: float | None = None, high: float | None = None, *,
              low_open: bool = False, high_open: bool = False) -> bool:
    """An int or float, not a bool, within ``low`` .. ``high`` (each end included unless ``*_open``;
    None: unbounded on that side)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if low is not None and (value <= low if low_open else value < low):
        return False
    return high is None or (value < high if high_open else value <= high)


def check_count(key: str, value: Any, minimum: int = 0, *, what: str | None = None,
                none_ok: bool = False) -> Any:
    """An int (not a bool) >= ``minimum``, or None when ``none_ok``.
    Message: ``must be an integer >= MINIMUM, got VALUE`` unless ``what`` phrases it."""
    if (value is None and none_ok) or is_int(value, minimum):
        return value
    raise must_be(key, what or f"an integer >= {minimum}", value)


def check_positive(key: str, value: Any, *, what: str = "a positive integer", none_ok: bool = False) -> Any:
    """An int (not a bool) >= 1, or None when ``none_ok``. Message: ``must be a positive integer, got VALUE``
    unless ``what`` phrases it (e.g. ``"a positive integer or null"``)."""
    return check_count(key, value, 1, what=what, none_ok=none_ok)


def _range_phrase(low: float | None, high: float | None, low_open: bool = False, high_open: bool = False) -> str:
    """``a number in [0, 1)``, ``a number >= 0``, ``a number > 0``, ``a number <= 1`` or ``a number``."""
    if low is not None and high is not None:
        return f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"a number {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"a number {'<' if high_open else '<='} {high:g}"
    return "a number"


def check_number(key: str, value: Any, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False, high_open: bool = False, what: str | None = None,
                 none_ok: bool = False) -> Any:
    """An int or float (not a bool) within ``low`` .. ``high`` (see :func:`is_number`), or None when
    ``none_ok``. Message: ``must be a number in [LOW, HIGH], got VALUE`` (the bounds as written by
    :func:`_range_phrase`) unless ``what`` phrases it."""
    if (value is None and none_ok) or is_number(value, low, high, low_open=low_open, high_open=high_open):
        return value
    raise must_be(key, what or _range_phrase(low, high, low_open, high_open), value)


def check_fraction(key: str, value: Any) -> Any:
    """A number in [0, 1) (a share that cannot be all): ``must be a number in [0, 1), got VALUE``."""
    return check_number(key, value, 0.0, 1.0, high_open=True)


def check_choice(key: str, value: Any, choices: tuple[str, ...] | list[str] | dict[str, Any], *,
                 what: str = "value") -> Any:
    """One of ``choices`` (a dict: one of its keys).
    Message: ``unknown WHAT 'VALUE'; choose one of A, B, C`` (``what`` names the kind, e.g. "activation")."""
    if isinstance(value, str) and value in choices:
        return value
    raise ConfigError(key, f"unknown {what} {value!r}; choose one of {', '.join(choices)}")


def check_given(key: str, value: Any, usage: str) -> Any:
    """A value the command line must give (``???`` in its YAML). Message: ``is required: USAGE``."""
    if value is None or value == "???" or value == "":
        raise ConfigError(key, f"is required: {usage}")
    return value


def check_file(key: str, path: Any, hint: str) -> Path:
    """An existing file (``~`` expanded), returned as a Path. Message: ``PATH does not exist; HINT``."""
    p = Path(str(path)).expanduser()
    if not p.is_file():
        raise ConfigError(key, f"{p} does not exist; {hint}")
    return p


def check_writable_dir(key: str, path: Any, hint: str) -> Path:
    """A folder that exists and takes new entries, or can be created (``~`` expanded), returned as an
    absolute Path; nothing is left behind. The nearest existing folder above it is tried by making a
    folder in it and removing it again: permission bits say little to root, to read-only or to virtual
    file systems (``/proc``). Message: ``cannot create PATH: WHY; HINT`` (``cannot write in PATH`` when it
    exists)."""
    p = Path(str(path)).expanduser().absolute()
    existing = p
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    what = f"cannot create {p}" if existing != p else f"cannot write in {p}"
    if not existing.is_dir():
        raise ConfigError(key, f"{what}: {existing} is a file, not a folder; {hint}")
    try:
        tempfile.TemporaryDirectory(dir=existing, prefix=".archfuse-write-check-").cleanup()
    except OSError as err:
        where = f": no folder can be made in {existing}" if existing != p else ""
        raise ConfigError(key, f"{what}{where} ({err.strerror}); {hint}") from None
    return p


def check_writable(key: str, path: Any, hint: str) -> Path:
    """A file path that can be written (``~`` expanded; folders missing on the way are created when it
    is written), returned as a Path. Messages: ``PATH is a directory; HINT``, ``cannot write PATH: ...``."""
    p = Path(str(path)).expanduser()
    if p.is_dir():
        raise ConfigError(key, f"{p} is a directory; {hint}")
    existing = next(a for a in p.absolute().parents if a.exists())
    if not existing.is_dir():
        raise ConfigError(key, f"cannot write {p}: {existing} is a file, not a directory")
    try:  # a file made and removed there: permissions, a read-only or a virtual file system
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".archfuse-probe-")
    except OSError as err:
        why = "no permission to write in" if err.errno in (errno.EACCES, errno.EPERM) else "cannot create files in"
        raise ConfigError(key, f"cannot write {p}: {why} {existing} ({err.strerror})") from None
    os.close(fd)
    os.unlink(probe)
    return p
