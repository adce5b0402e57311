"""Where the Hydra configs live (inside the installed package, or in the source tree), and how a run's
directory is named."""

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


def run_name(override_dirname: str) -> str:
    """A readable, filesystem-safe run name from Hydra's override string."""
    name = override_dirname.replace("/", "-").replace(",", "_")
    name = "".join(c for c in name if c.isalnum() or c in "._-+")
    return name[:120].rstrip("+-_.") or "default"

