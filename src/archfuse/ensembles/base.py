"""The ensemble contract: which members, how they train, how their outputs combine.

An ensemble strategy is one file in this package implementing :class:`Ensemble`, with its options in
conf/ensemble/<name>.yaml. It says:

- ``member_specs(model, seed)``: the members, each built from a model config with its own seed, or
  loaded from a checkpoint, and whether it is frozen;
- ``combine``: the combination rule, a pure function of the members' logits (shape K x N x C) and the
  combiner's tensors, returning N x C logits (log-probabilities are logits too);
- ``combiner_tensors(k, num_classes)``: the tensors the rule reads (fitted weights, a stacker's
  coefficients, thresholds). They are buffers of the combiner, so they live in every checkpoint and
  survive a weights_only load;
- ``training_loss(net, batch, criterion)``: by default the sum of each member's own loss, so members
  trained together learn exactly as if each were trained alone; with ``uses_sample_index`` the batch
  is ``(x, y, index)`` (per-member sample weights: bootstrap samples, shards);
- ``check(net, data)``: before any data loads, a ConfigError for a target it cannot meet (``data`` is an
  ``archfuse.context.DataView``);
- ``fit(net, data)``: after training, fit the combiner's tensors on held-out predictions
  (``data.member_logits("val")``, a :class:`CombinerData`) and return what was fitted, for the report.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from archfuse.context import DataView
from archfuse.errors import ConfigError


@dataclass(frozen=True)
class MemberSpec:
    """One member: built from ``model`` (a model config) with ``seed``, or loaded from ``checkpoint``."""

    model: dict[str, Any] | None = None
    seed: int | None = None  # None: drawn from the run's seeded stream, as a single model is
    checkpoint: str | None = None
    frozen: bool = False
    key: str = "model"  # the config key errors about this member name


class Combiner(nn.Module):
    """Applies a pure combination rule to stacked member logits, with the rule's tensors as buffers."""

    def __init__(self, rule: Callable[..., Tensor], tensors: dict[str, Tensor] | None = None):
        super().__init__()
        self.rule = rule
        self.names = list(tensors or {})
        for name, value in (tensors or {}).items():
            self.register_buffer(name, value.clone())

    def tensors(self) -> dict[str, Tensor]:
        return {name: getattr(self, name) for name in self.names}

    def forward(self, member_logits: Tensor) -> Tensor:
        return self.rule(member_logits, **self.tensors())


class EnsembleNet(nn.Module):
    """Members side by side and their combiner; ``forward`` gives the combined logits."""

    def __init__(self, members: list[nn.Module], combiner: Combiner):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.combiner = combiner

    def member_logits(self, x: Tensor) -> Tensor:
        if not self.training and not torch.is_grad_enabled():  # inference: same-architecture members fused
            from archfuse.ensembles.fused import fused_member_logits

            fused = fused_member_logits(self, x)
            if fused is not None:
                return fused
        outputs = [member(x) for member in self.members]
        if len({o.shape for o in outputs}) > 1:  # stacking would fail with a message naming no member
            shapes = ", ".join(f"member {i}: {tuple(o.shape)}" for i, o in enumerate(outputs))
            raise ConfigError("ensemble.members", f"the members' outputs differ in shape ({shapes}); every "
                              "member must return (batch, classes) logits for the same classes")
        return torch.stack(outputs)

    def forward(self, x: Tensor) -> Tensor:
        return self.combiner(self.member_logits(x))


def _no_fold_fits(fold: int, folds: int) -> tuple[Tensor, Tensor]:
    raise NotImplementedError("this run fits no members on folds")


def _no_scalars(scalars: dict[str, float]) -> None:
    """Nowhere to log to (a run without a logger)."""


@dataclass
class CombinerData:
    """What ``Ensemble.fit`` works with after training: the data, held-out predictions, and services."""

    data: DataView | None
    log_dir: Path | None  # the run's directory
    # member_logits(split) -> (K x N x C logits of every member, N targets), computed once per split
    member_logits: Callable[[str], tuple[Tensor, Tensor]]
    # fit_on_fold(fold, folds) -> (K x M x C, M): fresh members trained on the other folds of the
    # train+val pool predict the held-out fold (out-of-fold predictions, for stacking)
    fit_on_fold: Callable[[int, int], tuple[Tensor, Tensor]] = _no_fold_fits
    # log_scalars({tag: value}) -> TensorBoard scalars of the run, at step 0
    log_scalars: Callable[[dict[str, float]], None] = _no_scalars


def mean_of_probabilities(member_logits: Tensor) -> Tensor:
    """The default rule: average the members' probabilities; returned as log-probabilities."""
    return member_logits.softmax(-1).mean(0).log()


class Ensemble:
    """An ensemble strategy (see the module docstring)."""

    combine: Callable[..., Tensor] = staticmethod(mean_of_probabilities)
    uses_sample_index: bool = False

    def member_specs(self, model: dict[str, Any], seed: int | None) -> list[MemberSpec]:
        return [MemberSpec(model=model)]

    def combiner_tensors(self, k: int, num_classes: int) -> dict[str, Tensor]:
        return {}

    def build(self, members: list[nn.Module], num_classes: int) -> nn.Module:
        return EnsembleNet(members, Combiner(type(self).combine, self.combiner_tensors(len(members), num_classes)))

    def training_loss(self, net: nn.Module, batch: tuple[Tensor, ...], criterion: nn.Module) -> tuple[Tensor, Tensor]:
        """(loss, combined logits). The sum of the members' own losses: member k's gradients are those
        of training it alone on the batch."""
        x, y = batch[0], batch[1]
        member_logits = net.member_logits(x)
        loss = sum(criterion(logits, y) for logits in member_logits)
        return loss, net.combiner(member_logits.detach())

    def check(self, net: nn.Module, data: DataView) -> None:
        """Before any data loads: raise ConfigError(key, message) for what the strategy cannot do here."""

    def fit(self, net: nn.Module, data: CombinerData) -> dict[str, Any]:
        raise NotImplementedError  # a strategy with nothing to fit does not override this

    @property
    def has_fit(self) -> bool:
        return type(self).fit is not Ensemble.fit
