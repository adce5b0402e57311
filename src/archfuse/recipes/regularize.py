"""recipe=regularize: L1 and L2 penalties on the weights (conv kernels and linear weight matrices, not
biases or norm scales) added to the training loss, and the dropout rate of the model's own Dropout
layers. After fit it changes nothing and reports the weight norms and the share of near-zero weights.

L2 here is a loss term (``l2 * sum w^2``), not the optimizer's weight_decay (which Adam applies to every
parameter, biases and norms too).
"""

from typing import Any

import torch
from torch import Tensor, nn

from archfuse.checks import check_fraction, check_number
from archfuse.context import DataView
from archfuse.errors import ConfigError
from archfuse.recipes.base import AfterFit, Recipe

KEY = "recipe.regularize"


def penalised(net: nn.Module) -> list[tuple[str, Tensor]]:
    """The weights a penalty applies to: those of conv and linear layers."""
    return [(f"{n}.weight" if n else "weight", m.weight) for n, m in net.named_modules()
            if isinstance(m, nn.modules.conv._ConvNd | nn.Linear)]


def weight_report(net: nn.Module, threshold: float) -> dict[str, Any]:
    weights = penalised(net)
    flat = torch.cat([w.detach().flatten().float() for _, w in weights])
    return {"l1_norm": round(float(flat.abs().sum()), 4), "l2_norm": round(float(flat.norm()), 4),
            "near_zero_threshold": threshold,
            "near_zero_share": round(float((flat.abs() < threshold).float().mean()), 4),
            "layer_near_zero_share": {n: round(float((w.abs() < threshold).float().mean()), 4) for n, w in weights}}


class Regularize(Recipe):
    def __init__(self, *, l1: float, l2: float, dropout: float | None, near_zero: float):
        self.l1, self.l2, self.dropout, self.near_zero = l1, l2, dropout, near_zero

    def check(self, net: nn.Module, data: DataView) -> None:
        for name in ("l1", "l2", "near_zero"):
            check_number(f"{KEY}.{name}", getattr(self, name), 0.0)
        if self.dropout is not None:
            check_fraction(f"{KEY}.dropout", self.dropout)
            if not any(isinstance(m, nn.Dropout) for m in net.modules()):
                raise ConfigError(f"{KEY}.dropout", f"{type(net).__name__} has no Dropout layer to set; leave it "
                                  "null, or use a model with dropout (model=convnet model.dropout=0.25)")
        if not penalised(net):
            raise ConfigError(KEY, f"{type(net).__name__} has no conv or linear weights to penalise")

    def transform(self, net: nn.Module) -> nn.Module:
        if self.dropout is not None:
            for m in net.modules():
                if isinstance(m, nn.Dropout):
                    m.p = float(self.dropout)
        return net

    def loss_terms(self, logits: Tensor, batch: Any, net: nn.Module) -> dict[str, Tensor]:
        terms = {}
        weights = [w for _, w in penalised(net)]
        if self.l1:
            terms["l1"] = self.l1 * sum(w.abs().sum() for w in weights)
        if self.l2:
            terms["l2"] = self.l2 * sum(w.pow(2).sum() for w in weights)
        return terms

    def after_fit(self, step: AfterFit) -> dict[str, Any]:
        report = weight_report(step.net, self.near_zero)
        return {"l1": self.l1, "l2": self.l2, "dropout": self.dropout, **report,
                "summary": f"near-zero weights (|w| < {self.near_zero:g}) {report['near_zero_share']:.3f}, "
                           f"L1 norm {report['l1_norm']:.1f}, L2 norm {report['l2_norm']:.2f}"}
