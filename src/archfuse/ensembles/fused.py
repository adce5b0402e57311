"""Members of one architecture evaluated as one computation (inference only).

K members with the same structure become one network: their first convolutions side by side (the input
is shared), later convolutions grouped (one group per member), batch norms concatenated, linear layers
as batched matmuls, activations and pooling applied once to all. Measured on this CPU (1 thread, 5
members, fused time / loop time): seed003 0.83 at batch 1, 1.03 at 2, 1.19 at 4, 1.3 at 32; seed001
0.48 at 1, 0.78 at 4, 0.92 at 8, 1.03 at 32. Fewer, larger kernels pay off only while the per-call
overhead dominates, so archfuse fuses batches of up to FUSED_MAX_BATCH samples (single-sample latency) and
loops over the members for larger ones. Training always loops: each member's own
modules get their gradients.

The fused network is built from the members' current weights (torch.fx traces member 0) and rebuilt
whenever a weight changes; members it cannot express (another layer type, control flow, a wrapped or
quantized member, members that differ) are simply run one by one.
"""

from typing import Any

import torch
from torch import Tensor, nn

ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.LeakyReLU, nn.ELU, nn.Dropout, nn.Identity)
POOLS = (nn.MaxPool2d, nn.AvgPool2d)
CACHE = "_fused_members"
FUSED_MAX_BATCH = 1  # in the ensemble's __dict__: not a submodule, so never in a state dict


class ToMembers(nn.Module):
    """(N, K*C, H, W), member-major channels -> (K, N, C*H*W): each member's own flatten."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(len(x), self.k, -1).transpose(0, 1)


class BatchedLinear(nn.Module):
    """K linear layers at once: (N, F) shared or (K, N, F) -> (K, N, O)."""

    def __init__(self, layers: list[nn.Linear]):
        super().__init__()
        self.weight = torch.stack([l.weight.detach().T for l in layers])  # K x F x O
        bias = [l.bias.detach() if l.bias is not None else torch.zeros(l.out_features) for l in layers]
        self.bias = torch.stack(bias)[:, None]

    def forward(self, x: Tensor) -> Tensor:
        return torch.matmul(x, self.weight) + self.bias


def _conv(convs: list[nn.Conv2d], shared: bool) -> nn.Module | None:
    c = convs[0]
    if c.padding_mode != "zeros" or (shared and c.groups != 1) or not isinstance(c.padding, tuple | str):
        return None
    k = len(convs)
    fused = nn.Conv2d(c.in_channels * (1 if shared else k), c.out_channels * k, c.kernel_size, c.stride, c.padding,
                      c.dilation, groups=c.groups * (1 if shared else k), bias=c.bias is not None)
    with torch.no_grad():
        fused.weight.copy_(torch.cat([m.weight for m in convs]))
        if c.bias is not None:
            fused.bias.copy_(torch.cat([m.bias for m in convs]))
    return fused.to(c.weight.device)


def _batch_norm(norms: list[nn.BatchNorm2d]) -> nn.Module | None:
    b = norms[0]
    if not b.track_running_stats or b.running_mean is None:
        return None
    fused = nn.BatchNorm2d(b.num_features * len(norms), b.eps, affine=b.affine).to(b.running_mean.device).eval()
    with torch.no_grad():
        fused.running_mean.copy_(torch.cat([m.running_mean for m in norms]))
        fused.running_var.copy_(torch.cat([m.running_var for m in norms]))
        if b.affine:
            fused.weight.copy_(torch.cat([m.weight for m in norms]))
            fused.bias.copy_(torch.cat([m.bias for m in norms]))
    return fused


def _step(mods: list[nn.Module], form: str) -> tuple[nn.Module | None, str]:
    """The fused layer for one layer of every member, and the form of its output: ``shared`` (one tensor
    for all, the input), ``channels`` (N, K*C, ...) or ``members`` (K, N, F)."""
    m, k = mods[0], len(mods)
    if isinstance(m, ELEMENTWISE):
        return m, form
    if isinstance(m, POOLS) and form in ("shared", "channels"):
        return m, form
    if isinstance(m, nn.Conv2d) and type(m) is nn.Conv2d and form in ("shared", "channels"):
        return _conv(mods, form == "shared"), "channels"
    if isinstance(m, nn.BatchNorm2d) and form == "channels":
        return _batch_norm(mods), "channels"
    if isinstance(m, nn.Flatten) and m.start_dim == 1 and m.end_dim == -1:
        if form == "channels":
            return ToMembers(k), "members"
        return (m, "shared") if form == "shared" else (None, form)
    if type(m) is nn.Linear and form in ("shared", "members"):
        return BatchedLinear(mods), "members"
    return None, form


def fuse(members: list[nn.Module]) -> nn.Module | None:
    """One network computing the K members' logits as K x N x C, or None when they cannot be fused."""
    if len(members) < 2 or len({type(m) for m in members}) > 1:
        return None
    shapes = [[tuple(v.shape) for v in m.state_dict().values()] for m in members]
    if any(s != shapes[0] for s in shapes):
        return None
    try:
        graph = torch.fx.symbolic_trace(members[0]).graph
    except Exception:  # control flow, a user module fx cannot trace: run the members one by one
        return None
    layers, form, previous = [], "shared", None
    for node in graph.nodes:
        if node.op == "placeholder":
            if previous is not None:
                return None
        elif node.op == "call_module" and node.args == (previous,) and not node.kwargs:
            layer, form = _step([m.get_submodule(node.target) for m in members], form)
            if layer is None:
                return None
            layers.append(layer)
        elif node.op == "output":
            if node.args != (previous,) or form != "members":
                return None
        else:
            return None
        previous = node
    return nn.Sequential(*layers).eval()


def _state_key(members: Any) -> tuple:
    return tuple((id(t), t._version, t.device) for m in members for t in (*m.parameters(), *m.buffers()))


def fused_member_logits(ensemble: nn.Module, x: Tensor) -> Tensor | None:
    """The members' logits from their fused network (built or rebuilt from the current weights), or None
    (a batch too large to gain from fusion, members that cannot be fused)."""
    if len(x) > FUSED_MAX_BATCH:
        return None
    key = _state_key(ensemble.members)
    cached = ensemble.__dict__.get(CACHE)
    if cached is None or cached[0] != key:
        with torch.no_grad():
            cached = (key, fuse(list(ensemble.members)))
        ensemble.__dict__[CACHE] = cached
    return cached[1](x) if cached[1] is not None else None
