"""Activation functions by name, as the configs spell them."""

from torch import nn

from archfuse.checks import check_choice

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
}


def make_activation(name: str, key: str = "model.activation") -> nn.Module:
    check_choice(key, name, ACTIVATIONS, what="activation")
    return ACTIVATIONS[name]()
