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
from archfuse.data.datamodule import TensorDataModule
from archfuse.errors import ConfigError
from archfuse.exporting.data_spec import checkpoint_datamodule, checkpoint_spec
from archfuse.exporting.formats import INPUT, LOADERS, OUTPUT, kind_of, load, write
from archfuse.exporting.options import ExportMismatch, export_request, sidecar
from archfuse.exporting.network import exported_network, is_int8, normalised_logits
from archfuse.files import folders_removed_on_failure, write_atomic, write_json_atomic


def test_images(dm: TensorDataModule, spec: dict[str, Any], count: int) -> Tensor:
    """The first ``count`` images of the test split as the files take them: floats in [0, 1]."""
    x, _ = dm.split_tensors("test")
    mean = torch.tensor(spec["mean"], dtype=torch.float32).reshape(1, -1, 1, 1)
    std = torch.tensor(spec["std"], dtype=torch.float32).reshape(1, -1, 1, 1)
    return (x[:count].float() * std + mean).clamp(0.0, 1.0)


def verify(kind: str, path: str, images: Tensor, reference: Tensor, tolerance: float, key: str) -> dict[str, Any]:
    """The file, loaded as a user loads it, on the test images at once and on one image alone."""
    run = load(kind, path)
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


def export(cfg: dict[str, Any]) -> dict[str, Any]:
    """Write ``cfg["ckpt"]``'s network as ``cfg["format"]``; returns the spec written beside it."""
    fmt, ckpt_file, out = export_request(cfg)
    ckpt_path = str(ckpt_file)
    ckpt = read_checkpoint(ckpt_path, "ckpt")
    net = module_from_checkpoint(ckpt_path, "ckpt").net.eval()
    int8 = is_int8(net)
    dm = checkpoint_datamodule(ckpt, cfg.get("data"))
    spec = checkpoint_spec(ckpt, dm=dm)
    images = test_images(dm, spec, cfg["verify_images"])
    reference = normalised_logits(net, images, spec["mean"], spec["std"])
    kind = kind_of(fmt, int8)
    model = exported_network(net, spec["mean"], spec["std"], inductor=kind == "aoti_package")
    key = "int8_tolerance" if int8 else "tolerance"
    tolerance = cfg[key]
    what = "this int8 network" if int8 else "this network"
    meta = {"format": fmt, "kind": kind, "load": LOADERS[kind],
            "input_name": INPUT, "output_name": OUTPUT, "output": "logits, shape (batch, classes)",
            "classes": spec["classes"], "input_shape": spec["input_shape"], "dtype": "float32",
            "value_range": [0.0, 1.0], "batch": {"min": 1, "max": None},
            "channels": spec["channels"], "image_size": spec["image_size"], "mean": spec["mean"], "std": spec["std"],
            "normalisation": "inside the file: it computes (x - mean) / std per channel",
            "int8": int8, "archfuse_version": archfuse.__version__, "torch_version": torch.__version__,
            "source_checkpoint": str(Path(ckpt_path).resolve())}

    def write_verified(tmp: str) -> None:
        staged = tmp + out.suffix  # torch's pt2 readers and writers want the suffix
        try:
            write(kind, model, spec["input_shape"], staged, what)
            meta["verification"] = verify(kind, staged, images, reference, tolerance, key)
            meta["size_bytes"] = os.path.getsize(staged)
            os.replace(staged, tmp)
        finally:
            Path(staged).unlink(missing_ok=True)
        write_json_atomic(sidecar(out), meta)

    try:
        with folders_removed_on_failure(out.parent):
            write_atomic(out, write_verified)
    except OSError as err:
        raise ConfigError("out", f"cannot write {out}: {err.strerror or err}") from None
    meta["path"] = str(out)
    return meta
