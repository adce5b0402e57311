"""One export: checkpoint -> the network behind its normalisation -> a file, loaded back and checked
against archfuse's own network on the checkpoint's test images, with its spec written beside it.

Nothing is half-written: the file goes to a temporary name beside the target, is verified there, and
only then replaces the target (its JSON first); bad input is refused before any work.
"""

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import archfuse
from archfuse.build import module_from_checkpoint
from archfuse.checkpoint import read_checkpoint
from archfuse.checks import check_choice, check_number, check_positive, check_writable
from archfuse.data.datamodule import TensorDataModule
from archfuse.errors import ConfigError
from archfuse.exporting.data_spec import checkpoint_datamodule, checkpoint_spec
from archfuse.exporting.formats import (FORMATS, INPUT, LOADERS, OUTPUT, SUFFIXES, kind_of, load, require_onnx,
                                        sidecar, write)
from archfuse.exporting.network import exported_network, is_int8, normalised_logits
from archfuse.files import write_atomic, write_json_atomic


class ExportMismatch(RuntimeError):
    """The written file's outputs differ from archfuse's own network's by more than the tolerance."""


def output_path(out: Any, ckpt: str, fmt: str) -> Path:
    """Where the file goes (``out``, else beside the checkpoint with the format's suffix), refused when it
    cannot be written there."""
    suffix = SUFFIXES[fmt]
    path = Path(str(out)).expanduser() if out else Path(str(ckpt)).expanduser().with_suffix(suffix)
    if path.suffix != suffix:
        raise ConfigError("out", f"{path}: a format={fmt} file's name ends in {suffix}")
    for target in (path, sidecar(path)):
        check_writable("out", target, f"give a file name ending in {suffix}")
    return path


def test_images(dm: TensorDataModule, spec: dict[str, Any], count: int) -> Tensor:
    """The first ``count`` images of the test split as the files take them: floats in [0, 1]."""
    x, _ = dm.split_tensors("test")
    mean = torch.tensor(spec["mean"], dtype=torch.float32).reshape(1, -1, 1, 1)
    std = torch.tensor(spec["std"], dtype=torch.float32).reshape(1, -1, 1, 1)
    return (x[:count].float() * std + mean).clamp(0.0, 1.0)


def verify(kind: str, path: str, batch: int | None, images: Tensor, reference: Tensor,
           tolerance: float, key: str) -> dict[str, Any]:
    """The file, loaded as a user loads it, on the test images at once and on one image alone."""
    run = load(kind, path, batch)
    together, alone = run(images), run(images[:1])
    worst = float((together - reference).abs().max())
    single = float((alone - reference[:1]).abs().max())
    figures = {"images": len(images), "max_abs_logit_difference": max(worst, single),
               "batch_1_max_abs_logit_difference": single, "tolerance": tolerance,
               "top1_agreement": float((together.argmax(-1) == reference.argmax(-1)).float().mean())}
    if not max(worst, single) <= tolerance:  # NaN fails too
        raise ExportMismatch(f"the written file's logits differ from archfuse's own network's by up to "
                             f"{max(worst, single):.3g} on {len(images)} test images, over {key}={tolerance:g}; "
                             "nothing was written")
    return figures


def check_options(cfg: dict[str, Any]) -> str:
    fmt = check_choice("format", cfg.get("format"), FORMATS, what="format")
    check_number("tolerance", cfg.get("tolerance"), 0.0)
    check_number("int8_tolerance", cfg.get("int8_tolerance"), 0.0)
    check_positive("verify_images", cfg.get("verify_images"))
    check_positive("int8_batch", cfg.get("int8_batch"))
    if fmt == "onnx":
        require_onnx()
    return fmt


def export(cfg: dict[str, Any]) -> dict[str, Any]:
    """Write ``cfg["ckpt"]``'s network as ``cfg["format"]``; returns the spec written beside it."""
    fmt = check_options(cfg)
    ckpt_path = str(Path(str(cfg["ckpt"])).expanduser())
    ckpt = read_checkpoint(ckpt_path, "ckpt")
    out = output_path(cfg.get("out"), ckpt_path, fmt)
    net = module_from_checkpoint(ckpt_path, "ckpt").net.eval()
    int8 = is_int8(net)
    dm = checkpoint_datamodule(ckpt, cfg.get("data"))
    spec = checkpoint_spec(ckpt, dm=dm)
    images = test_images(dm, spec, cfg["verify_images"])
    reference = normalised_logits(net, images, spec["mean"], spec["std"])
    kind = kind_of(fmt, int8)
    batch = cfg["int8_batch"] if kind == "aoti_package" else None
    model = exported_network(net, spec["mean"], spec["std"], batch)
    key = "int8_tolerance" if int8 else "tolerance"
    tolerance = cfg[key]
    what = "this int8 network" if int8 else "this network"
    meta = {"format": fmt, "kind": kind, "load": LOADERS[kind],
            "input_name": INPUT, "output_name": OUTPUT, "output": "logits, shape (batch, classes)",
            "classes": spec["classes"], "input_shape": spec["input_shape"], "dtype": "float32",
            "value_range": [0.0, 1.0], "batch": {"min": 1, "max": batch},
            "channels": spec["channels"], "image_size": spec["image_size"], "mean": spec["mean"], "std": spec["std"],
            "normalisation": "inside the file: it computes (x - mean) / std per channel",
            "int8": int8, "archfuse_version": archfuse.__version__, "torch_version": torch.__version__,
            "source_checkpoint": str(Path(ckpt_path).resolve())}

    def write_verified(tmp: str) -> None:
        staged = tmp + out.suffix  # torch's pt2 readers and writers want the suffix
        try:
            write(kind, model, spec["input_shape"], batch, staged, what)
            meta["verification"] = verify(kind, staged, batch, images, reference, tolerance, key)
            meta["size_bytes"] = os.path.getsize(staged)
            os.replace(staged, tmp)
        finally:
            Path(staged).unlink(missing_ok=True)
        write_json_atomic(sidecar(out), meta)

    write_atomic(out, write_verified)
    meta["path"] = str(out)
    return meta
