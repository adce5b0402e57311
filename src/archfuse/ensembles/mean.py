"""ensemble=mean: the members' probabilities averaged (``combine: logits`` averages their logits)."""

from typing import Any

from torch import Tensor, nn

from archfuse.ensembles.base import Combiner, EnsembleNet, mean_of_probabilities
from archfuse.ensembles.members import MemberEnsemble
from archfuse.errors import ConfigError

COMBINE = ("probs", "logits")


def mean_of_logits(member_logits: Tensor) -> Tensor:
    return member_logits.mean(0)


def mean_rule(combine: str):
    return mean_of_logits if combine == "logits" else mean_of_probabilities


def check_combine(combine: Any) -> None:
    if combine not in COMBINE:
        raise ConfigError("ensemble.combine", f"unknown combination {combine!r}; choose probs (average of "
                          "probabilities) or logits (average of logits)")


class Mean(MemberEnsemble):
    def __init__(self, *, combine: str, **choice: Any):
        super().__init__(**choice)
        check_combine(combine)
        self.space = combine

    def build(self, members: list[nn.Module], num_classes: int) -> nn.Module:
        return EnsembleNet(members, Combiner(mean_rule(self.space)))
