"""Build a base model from its config, naming the config key when something is wrong."""

from pathlib import Path
from typing import Any

import torch
from torch import nn

from archfuse.config_dir import config_dir
from archfuse.errors import ConfigError
from archfuse.instantiate import build


def model_config_names() -> list[str]:
    """The model configs archfuse ships (conf/model/<name>.yaml), sorted."""
    return sorted(p.stem for p in (Path(config_dir()) / "model").glob("*.yaml"))


def named_model_config(name: Any) -> dict[str, Any] | None:
    """conf/model/<name>.yaml as a plain dict, the one place a model's option values are written down;
    None when there is no such config (the caller names its key in the error)."""
    from omegaconf import OmegaConf

    path = Path(config_dir()) / "model" / f"{name}.yaml"
    if not isinstance(name, str) or not path.is_file():
        return None
    return OmegaConf.to_container(OmegaConf.load(path))


def build_model(model_cfg: dict[str, Any], in_channels: int, num_classes: int,
                input_size: tuple[int, int], key: str = "model") -> nn.Module:
    """``model_cfg['_target_']`` called with the data's shape plus the other config keys (at ``key``)."""
    net = build(model_cfg, key, in_channels=in_channels, num_classes=num_classes, input_size=tuple(input_size))
    if not isinstance(net, nn.Module):
        raise ConfigError(f"{key}._target_", f"{model_cfg['_target_']} built a {type(net).__name__}, "
                          "not a torch.nn.Module")
    return net


def check_forward(net: nn.Module, input_shape: tuple[int, int, int], num_classes: int) -> None:
    """One tiny forward pass, so a shape mismatch is reported now and not after data loading."""
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            out = net(torch.zeros(2, *input_shape))
    except RuntimeError as err:
        c, h, w = input_shape
        raise ConfigError("model", f"forward pass on a {c}x{h}x{w} input failed: {err}") from None
    finally:
        net.train(was_training)
    if tuple(out.shape) != (2, num_classes):
        raise ConfigError("model", f"returns shape {tuple(out.shape)} for a batch of 2; "
                          f"expected (2, {num_classes}) logits")
