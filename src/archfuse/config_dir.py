"""Where the Hydra configs live (inside the installed package, or in the source tree), and how a run's
directory is named."""

import hashlib
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def config_dir() -> str:
    """The conf/ folder: shipped as archfuse/conf in a wheel, at the repository root in a checkout."""
    shipped = _PACKAGE_DIR / "conf"
    if shipped.is_dir():
        return str(shipped)
    source = _PACKAGE_DIR.parent.parent / "conf"
    if source.is_dir():
        return str(source)
    raise FileNotFoundError(f"archfuse configs not found in {shipped} or {source}; reinstall archfuse")


NAME_LENGTH = 120


def run_name(override_dirname: str) -> str:
    """A readable, filesystem-safe run name from Hydra's override string. A name too long for one is cut
    after a whole override (never inside a key) and ends in a short hash of the whole string, so two
    runs whose overrides differ only past the cut keep apart names."""
    name = override_dirname.replace("/", "-").replace(",", "_")
    name = "".join(c for c in name if c.isalnum() or c in "._-+")
    if len(name) <= NAME_LENGTH:
        return name.rstrip("+-_.") or "default"
    tag = "+" + hashlib.sha1(name.encode()).hexdigest()[:8]
    head = name[:NAME_LENGTH - len(tag)]
    cut = head.rfind("+")
    return (head[:cut] if cut > 0 else head).rstrip("+-_.") + tag

