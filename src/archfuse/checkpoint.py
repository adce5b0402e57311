"""Reading checkpoints safely (weights_only) with one clear error for a bad file."""

from pathlib import Path
from typing import Any

import torch

from archfuse.errors import ConfigError


def read_checkpoint(path: str | Path, key: str) -> dict[str, Any]:
    """Load an archfuse checkpoint with ``weights_only=True``; ``key`` names the config key it came from."""
    p = Path(str(path)).expanduser()
    if not p.is_file():
        raise ConfigError(key, f"{p} does not exist; give the path of a .ckpt file from a run's checkpoints/ folder")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a damaged file
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise ConfigError(key, f"{p} is not a readable checkpoint (truncated, damaged or not written by "
                          f"torch.save): {reason}") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "config" not in ckpt.get("hyper_parameters", {}):
        raise ConfigError(key, f"{p} is not an archfuse checkpoint (it has no state_dict and run config)")
    return ckpt

