"""What archfuse-predict is asked to do, checked before anything heavy is imported or loaded: the numbers,
the CSV's path, the checkpoint or exported file, and the image files to label."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archfuse.checks import check_file, check_given, check_positive, check_writable
from archfuse.errors import ConfigError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
MODEL_HINT = "give an archfuse checkpoint (.ckpt) or a file archfuse-export wrote (.pt2, .onnx)"
USAGE = "archfuse-predict ckpt=PATH input=FILE|DIR [out=preds.csv] [top_k=1]"


@dataclass
class Request:
    ckpt: Path
    files: list[Path]
    folder: bool  # the input is a folder (its images' folder names may be their classes)
    out: Path
    top_k: int
    batch_size: int


def image_files(path: Any) -> list[Path]:
    """The file itself, or the image files under a folder (by extension, any depth), in name order."""
    p = Path(str(path)).expanduser()
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise ConfigError("input", f"{p} does not exist; give an image file or a folder of images")
    files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in EXTENSIONS)
    if not files:
        raise ConfigError("input", f"{p} holds no image files ({', '.join(EXTENSIONS)}, in it or its subfolders)")
    return files


def predict_request(cfg: dict[str, Any]) -> Request:
    check_given("ckpt", cfg.get("ckpt"), USAGE)
    check_given("input", cfg.get("input"), USAGE)
    top_k = check_positive("top_k", cfg.get("top_k"))
    batch_size = check_positive("batch_size", cfg.get("batch_size"))
    out = check_writable("out", cfg.get("out"), "give a file name for the CSV")
    ckpt = check_file("ckpt", cfg.get("ckpt"), MODEL_HINT)
    files = image_files(cfg.get("input"))
    return Request(ckpt, files, Path(str(cfg["input"])).expanduser().is_dir(), out, top_k, batch_size)
