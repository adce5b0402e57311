"""Checkpoints: read safely (weights_only) with one clear error for a bad file; written atomically."""

from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from archfuse.checks import check_file
from archfuse.errors import ConfigError
from archfuse.files import write_atomic

# The key under which a checkpoint carries how its network's structure came to be (its members' records,
# the recipes' states): building with it rebuilds the exact structure the weights belong to.
RECORD_KEY = "archfuse"

def read_checkpoint(path: str | Path, key: str) -> dict[str, Any]:
    """Load an archfuse checkpoint with ``weights_only=True``; ``key`` names the config key it came from."""
    p = check_file(key, path, "give the path of a .ckpt file from a run's checkpoints/ folder")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a damaged file
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise ConfigError(key, f"{p} is not a readable checkpoint (truncated, damaged or not written by "
                          f"torch.save): {reason}") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "config" not in ckpt.get("hyper_parameters", {}):
        raise ConfigError(key, f"{p} is not an archfuse checkpoint (it has no state_dict and run config)")
    return ckpt


def save_atomic(payload: dict[str, Any], path: str | Path) -> None:
    """torch.save straight to the file, atomically (no in-memory copy, as Lightning's default makes)."""
    write_atomic(path, lambda tmp: torch.save(payload, tmp))


class LocalCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, saving local files with :func:`save_atomic`."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        if "://" in str(path):  # remote storage: Lightning's own writer
            return super().save_checkpoint(checkpoint, path, storage_options)
        save_atomic(checkpoint, path)
