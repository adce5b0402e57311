"""What archfuse-export is asked to do, checked before anything heavy is imported or loaded: the format,
the numbers, the packages a format needs, the checkpoint's path and where the file goes. Also the file
conventions archfuse-predict reads back (suffixes, the JSON beside a file)."""

from pathlib import Path
from typing import Any

from archfuse.checks import check_choice, check_file, check_given, check_number, check_positive, check_writable
from archfuse.errors import ConfigError

FORMATS = ("pt2", "onnx")
SUFFIXES = {"pt2": ".pt2", "onnx": ".onnx"}
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
CHECKPOINT_HINT = "give the path of a .ckpt file from a run's checkpoints/ folder"
USAGE = "archfuse-export ckpt=PATH format=pt2|onnx [out=FILE]"


class ExportMismatch(RuntimeError):
    """The written file's outputs differ from archfuse's own network's by more than the tolerance."""


def sidecar(path: Path) -> Path:
    """The spec written beside a file: FILE.json."""
    return path.with_name(path.name + ".json")


def require_onnx() -> None:
    """A clear error naming what to install when the ONNX packages are missing."""
    import importlib

    missing = []
    for name in ONNX_PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ConfigError("format", f"format=onnx needs {', '.join(missing)}, not installed here; install them "
                          f"with: pip install 'archfuse[export]' (or pip install {' '.join(ONNX_PACKAGES)})")


def output_path(out: Any, ckpt: Path, fmt: str) -> Path:
    """Where the file goes (``out``, else beside the checkpoint with the format's suffix), refused when it
    cannot be written there."""
    suffix = SUFFIXES[fmt]
    path = Path(str(out)).expanduser() if out else ckpt.with_suffix(suffix)
    if path.suffix != suffix:
        raise ConfigError("out", f"{path}: a format={fmt} file's name ends in {suffix}")
    for target in (path, sidecar(path)):
        check_writable("out", target, f"give a file name ending in {suffix}")
    return path


def export_request(cfg: dict[str, Any]) -> tuple[str, Path, Path]:
    """(format, checkpoint, output path) of an archfuse-export config, every option checked."""
    check_given("ckpt", cfg.get("ckpt"), USAGE)
    fmt = check_choice("format", check_given("format", cfg.get("format"), USAGE), FORMATS, what="format")
    check_number("tolerance", cfg.get("tolerance"), 0.0)
    check_number("int8_tolerance", cfg.get("int8_tolerance"), 0.0)
    check_positive("verify_images", cfg.get("verify_images"))
    ckpt = check_file("ckpt", cfg.get("ckpt"), CHECKPOINT_HINT)
    out = output_path(cfg.get("out"), ckpt, fmt)
    if fmt == "onnx":
        require_onnx()
    return fmt, ckpt, out
