"""What labels the images: an archfuse checkpoint's network, or a file archfuse-export wrote (its spec
read from the JSON beside it). Either way a function from images in [0, 1] to logits, with the spec."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from archfuse.build import module_from_checkpoint
from archfuse.checkpoint import read_checkpoint
from archfuse.checks import check_file
from archfuse.errors import ConfigError
from archfuse.exporting.data_spec import SPEC_KEYS, checkpoint_spec
from archfuse.exporting.formats import load
from archfuse.exporting.options import SUFFIXES, require_onnx, sidecar
from archfuse.predicting.options import MODEL_HINT
from archfuse.exporting.network import normalised_logits

KINDS = {"exported_program": "torch.export program", "aoti_package": "AOTInductor package", "onnx": "ONNX file"}


@dataclass
class Labeller:
    run: Callable[[Tensor], Tensor]  # images (N, C, H, W) in [0, 1] -> logits (N, classes)
    spec: dict[str, Any]  # the data spec: classes, input_shape, channels, image_size, mean, std
    what: str  # for the report: "checkpoint", "torch.export program", ...


def exported_labeller(path: Path) -> Labeller:
    meta_path = sidecar(path)
    if not meta_path.is_file():
        raise ConfigError("ckpt", f"{meta_path} does not exist: an exported file is read with the JSON "
                          "archfuse-export wrote beside it (its classes and input spec)")
    try:
        meta = json.loads(meta_path.read_text())
        kind, spec = meta["kind"], {k: meta[k] for k in SPEC_KEYS}
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError("ckpt", f"{meta_path} is not the JSON archfuse-export writes ({err})") from None
    if kind not in KINDS:
        raise ConfigError("ckpt", f"{meta_path} names an unknown kind of file {kind!r}")
    if kind == "onnx":
        require_onnx()
    try:
        run = load(kind, str(path))
    except Exception as err:  # torch and onnxruntime raise many types for a damaged file
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise ConfigError("ckpt", f"{path} is not a readable {KINDS[kind]} (truncated or damaged): {reason}") from None
    return Labeller(run, spec, KINDS[kind])


def checkpoint_labeller(path: Path, data: dict[str, Any] | None) -> Labeller:
    spec = checkpoint_spec(read_checkpoint(path, "ckpt"), data)
    net = module_from_checkpoint(str(path), "ckpt").net.eval()
    return Labeller(lambda x: normalised_logits(net, x, spec["mean"], spec["std"]), spec, "checkpoint")


def labeller(path: Any, data: dict[str, Any] | None = None) -> Labeller:
    """The labeller of a checkpoint (.ckpt) or an exported file (.pt2, .onnx, with its JSON beside it);
    ``data``: keys merged over a checkpoint's data config where its spec must be computed from its data."""
    p = check_file("ckpt", path, MODEL_HINT)
    if p.suffix in SUFFIXES.values():
        return exported_labeller(p)
    return checkpoint_labeller(p, data)
