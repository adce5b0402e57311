"""Helpers the structure recipes share: finding a CNN's conv blocks and head, replacing
modules by name, re-fitting what follows a removed block, and recording / replaying module shapes so a
changed network reloads from its checkpoint.

A *block* is a run of children of the network's feature ``nn.Sequential`` that starts at a Conv2d
(conv -> [batch norm] -> activation -> [pool] in the seed models and ConvNet).
"""

from typing import Any

import torch
from torch import nn

from archfuse.errors import ConfigError

SHAPE_ATTRS = ("in_channels", "out_channels", "in_features", "out_features", "num_features")


# -- finding things -----------------------------------------------------------------------------
def get_module(net: nn.Module, name: str) -> nn.Module:
    return net.get_submodule(name) if name else net


def set_module(net: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(get_module(net, parent), child, new)


def feature_sequential(net: nn.Module, key: str) -> tuple[str, nn.Sequential]:
    """The nn.Sequential that holds the conv blocks directly (``features`` in the seed models)."""
    for name, module in net.named_modules():
        if isinstance(module, nn.Sequential) and any(isinstance(c, nn.Conv2d) for c in module.children()):
            return name, module
    kinds = sorted({type(m).__name__ for m in net.modules() if not list(m.children())})
    raise ConfigError(key, f"{type(net).__name__} has no nn.Sequential of Conv2d blocks (it holds "
                      f"{', '.join(kinds)}); this recipe handles CNNs whose conv layers sit in one nn.Sequential")


def blocks(seq: nn.Sequential) -> list[list[int]]:
    """Child indices of each block; children before the first conv belong to the first block."""
    out: list[list[int]] = []
    for i, child in enumerate(seq.children()):
        if isinstance(child, nn.Conv2d) or not out:
            out.append([])
        out[-1].append(i)
    return out


def block_out_channels(seq: nn.Sequential, block: list[int]) -> int:
    convs = [seq[i] for i in block if isinstance(seq[i], nn.Conv2d)]
    return convs[-1].out_channels


def head_linear(net: nn.Module, features_name: str) -> tuple[str, nn.Linear] | None:
    """The first Linear after the features (in module order): the layer that reads the flattened map."""
    for name, module in net.named_modules():
        if isinstance(module, nn.Linear) and not (features_name and name.startswith(features_name + ".")):
            return name, module
    return None


def classifier_linear(net: nn.Module) -> nn.Module | None:
    """The last Conv2d or Linear: the layer that writes the logits."""
    layers = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    return layers[-1] if layers else None


# -- changing structure ---------------------------------------------------------------------------
POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def remove_block(net: nn.Module, index: int, input_shape: tuple[int, ...], key: str,
                 keep_pools: bool = False) -> None:
    """Delete conv block ``index`` (with ``keep_pools``, all of it but its pooling, so the feature map
    keeps its size) and re-fit what follows it (next conv's inputs, the head)."""
    _, seq = feature_sequential(net, key)
    for i in sorted(blocks(seq)[index], reverse=True):
        if not (keep_pools and isinstance(seq[i], POOLS)):
            del seq[i]  # nn.Sequential renumbers the children after it
    adapt(net, input_shape, key)


def adapt(net: nn.Module, input_shape: tuple[int, ...], key: str) -> list[str]:
    """Rebuild (freshly initialised) each layer whose input size no longer matches what feeds it: a conv
    after a removed block, the head after the features changed size. Returns the rebuilt layers' names."""
    name, seq = feature_sequential(net, key)
    rebuilt, channels = [], input_shape[0]
    device = next(iter(net.parameters())).device
    for i, child in enumerate(list(seq.children())):
        if isinstance(child, nn.Conv2d):
            if child.in_channels != channels:
                seq[i] = nn.Conv2d(channels, child.out_channels, child.kernel_size, child.stride, child.padding,
                                   child.dilation, bias=child.bias is not None).to(device)
                rebuilt.append(f"{name}.{i}" if name else str(i))
            channels = child.out_channels
        elif isinstance(child, nn.BatchNorm2d) and child.num_features != channels:
            seq[i] = nn.BatchNorm2d(channels).to(device)
    was_training = seq.training
    with torch.no_grad():
        size = seq.eval()(torch.zeros(1, *input_shape, device=device)).numel()
    seq.train(was_training)
    head = head_linear(net, name)
    if head is not None and head[1].in_features != size:
        set_module(net, head[0], nn.Linear(size, head[1].out_features, bias=head[1].bias is not None).to(device))
        rebuilt.append(head[0])
    return rebuilt


def module_shapes(net: nn.Module) -> dict[str, Any]:
    """Shape attributes and tensor shapes of every conv, linear and norm layer: plain data for a checkpoint."""
    out = {}
    for name, m in net.named_modules():
        if isinstance(m, nn.Conv2d | nn.Linear | nn.modules.batchnorm._BatchNorm):
            out[name] = {"attrs": {a: getattr(m, a) for a in SHAPE_ATTRS if hasattr(m, a)},
                         "tensors": {n: list(t.shape) for n, t in [*m.named_parameters(recurse=False),
                                                                   *m.named_buffers(recurse=False)]}}
    return out


def apply_shapes(net: nn.Module, shapes: dict[str, Any]) -> nn.Module:
    """Resize layers to recorded shapes (empty tensors: the checkpoint's weights fill them)."""
    for name, record in shapes.items():
        m = get_module(net, name)
        for attr, value in record["attrs"].items():
            setattr(m, attr, value)
        params = dict(m.named_parameters(recurse=False))
        for tensor, shape in record["tensors"].items():
            if tensor in params:
                if list(params[tensor].shape) != shape:
                    setattr(m, tensor, nn.Parameter(params[tensor].new_empty(shape)))
            else:
                buf = getattr(m, tensor)
                if buf is not None and list(buf.shape) != shape:
                    setattr(m, tensor, buf.new_zeros(shape))
    return net


def channel_widths(net: nn.Module) -> dict[str, int]:
    """Output channels / units of each conv and linear layer."""
    return {name: (m.out_channels if isinstance(m, nn.Conv2d) else m.out_features)
            for name, m in net.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)}
