"""The data spec of a checkpoint: what its network's images look like (shape, classes, channels, size) and
the normalisation it was trained with, as plain JSON-able data (the keys of docs/exporting.md).

A checkpoint that records its spec (``ckpt["archfuse"]["data"]``) is read as it is. One written before
that existed has none: its data module is rebuilt from the run config and asked; a data module that cannot
answer itself computes it as ``TensorDataModule.setup`` normalises (per channel over the training pool, on
the [0, 1] scale, std clamped at 1e-6), so the figures are the ones the network was trained with.
"""

from typing import Any

from archfuse.build import build_datamodule
from archfuse.checkpoint import RECORD_KEY
from archfuse.data.datamodule import TensorDataModule

SPEC_KEYS = ("input_shape", "classes", "mean", "std", "channels", "image_size")


def recorded_spec(ckpt: dict[str, Any]) -> dict[str, Any] | None:
    """The spec the checkpoint carries, or None for one written before checkpoints recorded it (or one
    whose record lacks a key: it is computed then). ``class_names`` is read as ``classes``; channels and
    image size follow from the input shape where they are not written down."""
    data = (ckpt.get(RECORD_KEY) or {}).get("data")
    if not isinstance(data, dict):
        return None
    spec = dict(data)
    if "classes" not in spec and "class_names" in spec:
        spec["classes"] = spec["class_names"]
    if "input_shape" in spec:
        spec.setdefault("channels", spec["input_shape"][0])
        spec.setdefault("image_size", list(spec["input_shape"][1:]))
    return spec if all(k in spec for k in SPEC_KEYS) else None


def checkpoint_datamodule(ckpt: dict[str, Any], overrides: dict[str, Any] | None) -> TensorDataModule:
    """The checkpoint's data module, rebuilt from its run config with ``data.*`` keys merged over it (as
    archfuse-eval does: ``+data.root=DIR`` where the files lie on this machine)."""
    config = ckpt["hyper_parameters"]["config"]
    dm = build_datamodule({**config, "data": {**config["data"], **(overrides or {})}})
    dm.check_available()
    return dm


def class_names(dm: TensorDataModule) -> list[str]:
    """The classes in label order: the data module's own names, the torchvision set's, else "0", "1", ..."""
    names = getattr(dm, "classes", None)
    if names is None and hasattr(dm, "dataset_cls"):
        names = getattr(dm.dataset_cls, "classes", None)
        if not isinstance(names, list | tuple) and hasattr(dm, "_read"):  # CIFAR-10 reads its names from a file
            names = getattr(dm._read(False), "classes", None)
    if not isinstance(names, list | tuple) or len(names) != dm.num_classes:
        names = [str(i) for i in range(dm.num_classes)]
    return [str(n) for n in names]


def datamodule_spec(dm: TensorDataModule) -> dict[str, Any]:
    """The spec of a data module: its own ``data_spec()`` where it has one, else computed as its setup
    normalises."""
    if hasattr(dm, "data_spec"):
        return {k: dm.data_spec()[k] for k in SPEC_KEYS}
    x_pool = dm.load_arrays().x_pool
    dims = (0, 2, 3)
    mean = x_pool.mean(dim=dims)
    std = x_pool.std(dim=dims).clamp_min(1e-6)
    return {"input_shape": list(dm.input_shape), "classes": class_names(dm), "mean": mean.tolist(),
            "std": std.tolist(), "channels": int(dm.in_channels), "image_size": list(dm.input_size)}


def checkpoint_spec(ckpt: dict[str, Any], overrides: dict[str, Any] | None = None,
                    dm: TensorDataModule | None = None) -> dict[str, Any]:
    """The checkpoint's data spec: recorded, else asked of its data module (``dm``, or rebuilt)."""
    spec = recorded_spec(ckpt)
    if spec is not None:
        return {k: list(spec[k]) if isinstance(spec[k], tuple) else spec[k] for k in SPEC_KEYS}
    return datamodule_spec(dm if dm is not None else checkpoint_datamodule(ckpt, overrides))
