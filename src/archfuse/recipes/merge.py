"""recipe=merge: exact merges, then the most redundant block removed.

Exact merges change the structure, not the function (outputs equal within float rounding, checked and
reported before any fine-tune):
- a batch norm after a conv is folded into the conv's weights and bias (w * g / sqrt(var + eps), ...);
- two linear layers with nothing between them are multiplied out into one (W2 W1, W2 b1 + b2).

"Merge similar layers": the outputs of consecutive conv blocks on validation data are compared with
linear CKA (Kornblith et al. 2019, a similarity that allows different widths; 1 = the same up to a
rotation and scale). The block whose output is most similar to its predecessor's adds least: it is
merged into its predecessor (its layers go, its pooling stays, so the feature map keeps its size), the
next conv (or the head) is re-fitted to the predecessor's channels as in ``cut``, and the network is
fine-tuned. What was merged and
removed is the recipe's state: loading replays it.
"""

from typing import Any

import torch
from torch import Tensor, nn

from archfuse.checks import check_count
from archfuse.context import DataView
from archfuse.errors import ConfigError
from archfuse.evaluation import net_device
from archfuse.recipes.base import AfterFit, SurgeryRecipe
from archfuse.recipes.surgery import blocks, feature_sequential, get_module, remove_block, set_module

KEY = "recipe.merge"


def bn_pairs(net: nn.Module) -> list[tuple[str, str]]:
    """(conv, batch norm) names where the norm directly follows the conv in an nn.Sequential."""
    pairs = []
    for name, seq in net.named_modules():
        if isinstance(seq, nn.Sequential):
            children = list(seq.named_children())
            for (a, ma), (b, mb) in zip(children, children[1:]):
                if isinstance(ma, nn.Conv2d) and isinstance(mb, nn.BatchNorm2d) and ma.groups == 1:
                    pairs.append((f"{name}.{a}" if name else a, f"{name}.{b}" if name else b))
    return pairs


def linear_pairs(net: nn.Module) -> list[tuple[str, str]]:
    """Consecutive Linear layers of an nn.Sequential with no activation (only Identity) between them."""
    pairs = []
    for name, seq in net.named_modules():
        if isinstance(seq, nn.Sequential):
            named = [(f"{name}.{c}" if name else c, m) for c, m in seq.named_children()
                     if not isinstance(m, nn.Identity)]
            for (a, ma), (b, mb) in zip(named, named[1:]):
                if isinstance(ma, nn.Linear) and isinstance(mb, nn.Linear):
                    pairs.append((a, b))
    return pairs


def fold_structure(net: nn.Module, bn: list[list[str]], linear: list[list[str]]) -> None:
    """The merged layers' shapes (values follow in fold_values or from a checkpoint)."""
    for conv_name, bn_name in bn:
        conv = get_module(net, conv_name)
        if conv.bias is None:
            conv.bias = nn.Parameter(conv.weight.new_zeros(conv.out_channels))
        set_module(net, bn_name, nn.Identity())
    for a, b in linear:
        la, lb = get_module(net, a), get_module(net, b)
        set_module(net, a, nn.Linear(la.in_features, lb.out_features).to(la.weight.device))
        set_module(net, b, nn.Identity())


@torch.no_grad()
def fold(net: nn.Module) -> dict[str, list[list[str]]]:
    """Fold every (conv, bn) and (linear, linear) pair; returns the names, for replay."""
    bn = [list(p) for p in bn_pairs(net)]
    for conv_name, bn_name in bn:
        conv, norm = get_module(net, conv_name), get_module(net, bn_name)
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(norm.running_mean)
        new_bias = (bias - norm.running_mean) * scale + norm.bias
        conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
        if conv.bias is None:
            conv.bias = nn.Parameter(new_bias.clone())
        else:
            conv.bias.copy_(new_bias)
        set_module(net, bn_name, nn.Identity())
    linear = [list(p) for p in linear_pairs(net)]
    for a, b in linear:
        la, lb = get_module(net, a), get_module(net, b)
        merged = nn.Linear(la.in_features, lb.out_features).to(la.weight.device)
        merged.weight.copy_(lb.weight @ la.weight)
        b1 = la.bias if la.bias is not None else torch.zeros(la.out_features, device=la.weight.device)
        merged.bias.copy_(lb.weight @ b1 + (lb.bias if lb.bias is not None else 0.0))
        set_module(net, a, merged)
        set_module(net, b, nn.Identity())
    return {"bn": bn, "linear": linear}


def linear_cka(x: Tensor, y: Tensor) -> float:
    """Linear CKA of two representations of the same n samples (n x p and n x q), via n x n Gram matrices."""
    x, y = x.flatten(1).double(), y.flatten(1).double()
    x, y = x - x.mean(0), y - y.mean(0)
    k, l = x @ x.T, y @ y.T
    return float((k * l).sum() / (k.norm() * l.norm()).clamp_min(1e-12))


@torch.no_grad()
def block_similarities(net: nn.Module, x: Tensor) -> list[float]:
    """CKA between the outputs of block i and block i+1 on inputs ``x`` (the features run block by block)."""
    _, seq = feature_sequential(net, KEY)
    was_training = net.training
    net.eval()
    outputs, h = [], x.to(net_device(net))
    for block in blocks(seq):
        for i in block:
            h = seq[i](h)
        outputs.append(h)
    net.train(was_training)
    return [round(linear_cka(a, b), 4) for a, b in zip(outputs, outputs[1:])]


class Merge(SurgeryRecipe):
    def __init__(self, *, fold: bool, similar: bool, samples: int, fine_tune_epochs: int,
                 fine_tune_lr: float | None):
        self.fold, self.similar, self.samples = fold, similar, samples
        self.fine_tune_epochs, self.fine_tune_lr = fine_tune_epochs, fine_tune_lr
        super().__init__()

    def check(self, net: nn.Module, data: DataView) -> None:
        check_count(f"{KEY}.samples", self.samples, 2)
        check_count(f"{KEY}.fine_tune_epochs", self.fine_tune_epochs)
        if not self.fold and not self.similar:
            raise ConfigError(KEY, "nothing to do: set fold=true (exact merges) and/or similar=true")
        if self.similar:
            n = len(blocks(feature_sequential(net, f"{KEY}.similar")[1]))
            if n < 2:
                raise ConfigError(f"{KEY}.similar", f"the model has {n} conv block; merging similar blocks "
                                  "needs at least 2 (set similar=false for the exact merges only)")
        elif not bn_pairs(net) and not linear_pairs(net):
            raise ConfigError(f"{KEY}.fold", f"{type(net).__name__} has no conv + batch norm or linear + linear "
                              "pair to merge exactly")

    @staticmethod
    def replay(net: nn.Module, state: dict[str, Any]) -> nn.Module:
        fold_structure(net, state["bn"], state["linear"])
        if state.get("removed") is not None:
            remove_block(net, state["removed"], tuple(state["input_shape"]), KEY, keep_pools=True)
        return net

    def after_fit(self, step: AfterFit) -> dict[str, Any]:
        net = step.net
        x = step.data.split_tensors("val")[0][:self.samples]
        report: dict[str, Any] = {}
        op: dict[str, Any] = {"bn": [], "linear": [], "removed": None, "input_shape": list(step.run.input_shape)}
        self.applied.append(op)  # filled in below, before any fine-tune writes a checkpoint
        summary = []
        if self.fold:
            was_training = net.training
            net.eval()
            with torch.no_grad():
                reference = net(x.to(net_device(net)))
                op.update(fold(net))
                diff = float((net(x.to(net_device(net))) - reference).abs().max())
            net.train(was_training)
            report.update({"folded_bn": op["bn"], "folded_linear": op["linear"],
                           "fold_max_abs_diff": diff})
            summary.append(f"folded {len(op['bn'])} bn + {len(op['linear'])} linear "
                           f"(max |diff| {diff:.1e})")
        if self.similar:
            scores = block_similarities(net, x)
            removed = max(range(len(scores)), key=scores.__getitem__) + 1
            op["removed"] = removed
            remove_block(net, removed, tuple(step.run.input_shape), KEY, keep_pools=True)
            report.update({"block_cka": scores, "removed_block": removed,
                           "val_acc_before_fine_tune": step.evaluate("val")["acc"]})
            summary.append(f"CKA of consecutive blocks {scores}: removed block {removed}")
            if self.fine_tune_epochs:
                step.fine_tune(self.fine_tune_epochs, lr=self.fine_tune_lr)
        return {**report, "summary": "; ".join(summary)}
