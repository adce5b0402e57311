"""recipe=grow: insert a new conv block that leaves the network's outputs unchanged, then train on.

The block is residual, ``x + conv2(act(conv1(x)))``, with conv2's weights and bias zero: at insertion the
network computes exactly what it computed before (checked and reported), while gradients reach conv2 at
once and conv1 through it, so the fine-tune can make use of the new depth. Channels and spatial size are
those of the block it follows, so nothing else changes. Where it was inserted is the recipe's state.
"""

from typing import Any

import torch
from torch import Tensor, nn

from archfuse.checks import check_count, is_int
from archfuse.context import DataView
from archfuse.errors import ConfigError
from archfuse.evaluation import net_device
from archfuse.models.activations import make_activation
from archfuse.recipes.base import AfterFit, SurgeryRecipe
from archfuse.recipes.surgery import block_out_channels, blocks, feature_sequential

KEY = "recipe.grow"


class ResidualBlock(nn.Module):
    """x + conv2(act(conv1(x))), same channels and size; conv2 starts at zero (an identity block)."""

    def __init__(self, channels: int, kernel_size: int = 3, activation: str = "relu"):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.act = make_activation(activation)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


class Grow(SurgeryRecipe):
    def __init__(self, *, position: int, kernel_size: int, activation: str, fine_tune_epochs: int,
                 fine_tune_lr: float | None):
        self.position, self.kernel_size, self.activation = position, kernel_size, activation
        self.fine_tune_epochs, self.fine_tune_lr = fine_tune_epochs, fine_tune_lr
        super().__init__()

    def check(self, net: nn.Module, data: DataView) -> None:
        check_count(f"{KEY}.kernel_size", self.kernel_size, 1)
        if self.kernel_size % 2 == 0:
            raise ConfigError(f"{KEY}.kernel_size", f"must be odd so the padding keeps the size, got {self.kernel_size}")
        check_count(f"{KEY}.fine_tune_epochs", self.fine_tune_epochs)
        make_activation(self.activation, f"{KEY}.activation")
        n = len(blocks(feature_sequential(net, KEY)[1]))
        p = self.position
        if not is_int(p) or not -n <= p < n:
            raise ConfigError(f"{KEY}.position", f"there is no block {p!r} to grow after: the model has {n} conv "
                              f"blocks (positions 0..{n - 1}, or -1 for after the last)")

    @staticmethod
    def replay(net: nn.Module, state: dict[str, Any]) -> nn.Module:
        _, seq = feature_sequential(net, KEY)
        block = blocks(seq)[state["after"]]
        new = ResidualBlock(block_out_channels(seq, block), state["kernel_size"], state["activation"])
        seq.insert(block[-1] + 1, new.to(net_device(net)))
        return net

    def after_fit(self, step: AfterFit) -> dict[str, Any]:
        net = step.net
        n = len(blocks(feature_sequential(net, KEY)[1]))
        op = {"after": self.position % n, "kernel_size": self.kernel_size, "activation": self.activation}
        x = step.data.split_tensors("val")[0][:256].to(net_device(net))
        was_training = net.training
        net.eval()
        with torch.no_grad():
            reference = net(x)
            self.replay(net, op)
            diff = float((net(x) - reference).abs().max())
        net.train(was_training)
        self.applied.append(op)
        if self.fine_tune_epochs:
            step.fine_tune(self.fine_tune_epochs, lr=self.fine_tune_lr)
        return {"inserted_after_block": op["after"], "blocks_before": n, "blocks_after": n + 1,
                "insert_max_abs_diff": diff,
                "summary": f"residual block inserted after block {op['after']} "
                           f"(outputs unchanged: max |diff| {diff:.1e}), then trained"}
