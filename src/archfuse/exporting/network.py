"""The network a file holds: archfuse's trained network behind the data's normalisation, taking images in
[0, 1] and returning logits, in a form torch.export can trace.

Two parts of archfuse's networks run differently once exported, with the same numbers:
- an int8 network (recipe=quantize) is its converted graph, without the wrapper that compiles it on
  first use (for an AOTInductor package, with its one-channel convolutions widened: see
  widened_single_channel_convs);
- an ensemble runs every member and then its combiner's rule: a cascade's early exit, which runs each
  stage on the samples still open, is data-dependent control flow that a graph cannot hold; its rule
  picks the same answering stage for every sample.
"""

import copy

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


def widened_single_channel_convs(graph: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """A copy of an int8 graph in which each quantized convolution of a one-channel input takes two: the
    input and a channel of zeros, its int8 weights a channel of zeros more. It computes the same numbers
    (a zero pixel quantizes to the zero point, and meets zero weights), but with a dynamic batch size
    Inductor lays a one-channel convolution's output out as it should only for two channels or more: its
    int8 kernels compute wrong numbers otherwise (torch 2.14). Other graphs are returned as they are."""
    q = torch.ops.quantized_decomposed
    graph = copy.deepcopy(graph)
    for conv in [n for n in graph.graph.nodes if n.target == torch.ops.aten.conv2d.default]:
        x, w = conv.args[0], conv.args[1]
        if not (isinstance(x, torch.fx.Node) and x.target == q.dequantize_per_tensor.default
                and isinstance(w, torch.fx.Node) and w.target == q.dequantize_per_channel.default):
            continue
        quantized, weight = x.args[0], w.args[0]
        if weight.op != "get_attr" or (len(conv.args) > 6 and conv.args[6] != 1):  # grouped
            continue
        int8 = getattr(graph, weight.target)
        if int8.shape[1] != 1 or not (len(quantized.users) == len(x.users) == len(weight.users) == 1):
            continue
        wide = torch.cat([int8.data, torch.zeros_like(int8.data)], 1)
        setattr(graph, weight.target, nn.Parameter(wide, requires_grad=False) if isinstance(int8, nn.Parameter)
                else wide)
        source = quantized.args[0]
        with graph.graph.inserting_before(quantized):
            zeros = graph.graph.call_function(torch.ops.aten.zeros_like.default, (source,))
            two = graph.graph.call_function(torch.ops.aten.cat.default, ([source, zeros], 1))
        quantized.replace_input_with(source, two)
    graph.graph.lint()
    graph.recompile()
    return graph


def is_int8(net: nn.Module) -> bool:
    """Whether the network holds an int8 graph of recipe=quantize (itself or as an ensemble's member)."""
    return any(isinstance(m, Int8Net) for m in net.modules())


def traceable(net: nn.Module, inductor: bool = False) -> nn.Module:
    """The network as torch.export traces it, computing what ``net`` computes in evaluation; ``inductor``:
    for Inductor to compile with a dynamic batch size."""
    if isinstance(net, Int8Net):
        return widened_single_channel_convs(net.graph) if inductor else net.graph
    if isinstance(net, EnsembleNet) and (type(net).forward is EnsembleNet.forward or isinstance(net, CascadeNet)):
        return CombinedMembers([traceable(m, inductor) for m in net.members], net.combiner)
    return net


def exported_network(net: nn.Module, mean: list[float], std: list[float], inductor: bool = False) -> nn.Module:
    """What the file holds: the normalisation, then the network (``inductor``: as Inductor compiles it)."""
    return NormalizedNet(traceable(net.eval(), inductor), mean, std).eval()


def normalised_logits(net: nn.Module, images: Tensor, mean: list[float], std: list[float]) -> Tensor:
    """archfuse's own network on ``images`` in [0, 1], normalised as its data module normalises, in full
    precision as every archfuse evaluation runs."""
    m = torch.tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1)
    with torch.inference_mode(), torch.autocast("cpu", enabled=False):
        return net((images.float() - m) / s).float()
