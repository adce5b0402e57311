"""Base models. Every model is built by ``_target_`` with the data's shape as keyword arguments:

    Model(in_channels=C, num_classes=K, input_size=(H, W), **other_config_keys)

A user's own ``nn.Module`` plugs in the same way: ``model._target_=package.module.Class``.
"""

from dataclasses import dataclass, field
from typing import Any

# Typed schemas of the built-in models: a wrong type or a misspelt key is caught before any
# model is built. A user's own model has no schema; its constructor is the check.


@dataclass
class Seed000Config:
    _target_: str = "archfuse.models.seed000.Seed000"


@dataclass
class Seed001Config:
    _target_: str = "archfuse.models.seed001.Seed001"


@dataclass
class Seed003Config:
    _target_: str = "archfuse.models.seed003.Seed003"


@dataclass
class MLPConfig:
    _target_: str = "archfuse.models.mlp.MLP"
    hidden_sizes: list[int] = field(default_factory=lambda: [256, 128])
    activation: str = "relu"
    dropout: float = 0.0


@dataclass
class ConvNetConfig:
    _target_: str = "archfuse.models.convnet.ConvNet"
    width: int = 32
    depth: int = 3
    activation: str = "relu"
    kernel_size: int = 3
    batch_norm: bool = False
    dropout: float = 0.0
    head_width: int = 128


SCHEMAS: dict[str, Any] = {
    schema._target_: schema
    for schema in (Seed000Config, Seed001Config, Seed003Config, MLPConfig, ConvNetConfig)
}
