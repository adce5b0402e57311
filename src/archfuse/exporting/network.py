"""The network a file holds: archfuse's trained network behind the data's normalisation, taking images in
[0, 1] and returning logits, in a form torch.export can trace.

Two parts of archfuse's networks run differently once exported, with the same numbers:
- an int8 network (recipe=quantize) is its converted graph, without the wrapper that compiles it on
  first use;
- an ensemble runs every member and then its combiner's rule: a cascade's early exit, which runs each
  stage on the samples still open, is data-dependent control flow that a graph cannot hold; its rule
  picks the same answering stage for every sample.
"""

import torch
from torch import Tensor, nn

from archfuse.ensembles.base import EnsembleNet
from archfuse.ensembles.cascade import CascadeNet
from archfuse.recipes.quantize import Int8Net


class InferenceOnly(nn.Module):
    """``train()``/``eval()`` only set the flag: the wrapped networks are already in evaluation mode, and
    an exported int8 graph refuses both calls."""

    def train(self, mode: bool = True) -> "InferenceOnly":
        self.training = mode
        return self


class NormalizedNet(InferenceOnly):
    """Images in [0, 1] -> logits: ``net((x - mean) / std)``, the data module's own normalisation."""

    def __init__(self, net: nn.Module, mean: list[float], std: list[float]):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net((x - self.mean) / self.std)


class CombinedMembers(InferenceOnly):
    """An ensemble as one straight-line computation: each member's logits, stacked, then the combiner."""

    def __init__(self, members: list[nn.Module], combiner: nn.Module):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.combiner = combiner

    def forward(self, x: Tensor) -> Tensor:
        return self.combiner(torch.stack([member(x) for member in self.members]))


class PaddedBatch(InferenceOnly):
    """Runs ``net`` at one fixed batch size: a batch of n <= ``size`` images is padded to ``size`` by
    repeating its last image, and the padding's outputs are dropped. (Inductor's int8 convolutions
    compute wrong numbers with a dynamic batch size; samples do not interact, so padding changes none.)"""

    def __init__(self, net: nn.Module, size: int):
        super().__init__()
        self.net, self.size = net, size

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        index = torch.arange(self.size, device=x.device).clamp(max=n - 1)
        return self.net(x[index])[:n]


def is_int8(net: nn.Module) -> bool:
    """Whether the network holds an int8 graph of recipe=quantize (itself or as an ensemble's member)."""
    return any(isinstance(m, Int8Net) for m in net.modules())


def traceable(net: nn.Module) -> nn.Module:
    """The network as torch.export traces it, computing what ``net`` computes in evaluation."""
    if isinstance(net, Int8Net):
        return net.graph
    if isinstance(net, EnsembleNet) and (type(net).forward is EnsembleNet.forward or isinstance(net, CascadeNet)):
        return CombinedMembers([traceable(m) for m in net.members], net.combiner)
    return net


def exported_network(net: nn.Module, mean: list[float], std: list[float], batch: int | None = None) -> nn.Module:
    """What the file holds: the normalisation, then the network; with ``batch``, at that fixed batch size."""
    model = NormalizedNet(traceable(net.eval()), mean, std)
    return (PaddedBatch(model, batch) if batch else model).eval()


def normalised_logits(net: nn.Module, images: Tensor, mean: list[float], std: list[float]) -> Tensor:
    """archfuse's own network on ``images`` in [0, 1], normalised as its data module normalises, in full
    precision as every archfuse evaluation runs."""
    m = torch.tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1)
    with torch.inference_mode(), torch.autocast("cpu", enabled=False):
        return net((images.float() - m) / s).float()
