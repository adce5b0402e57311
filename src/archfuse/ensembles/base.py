"""The ensemble contract: build the network a run trains out of member networks."""

from collections.abc import Callable

from torch import nn


class Ensemble:
    """``build`` receives a factory of member networks and returns the one network to train.

    A strategy builds ``size`` members and wraps them with its combination rule (a pure function
    of the members' logits); ``after_fit`` hooks may later fit weights or thresholds on
    validation data.
    """

    name = "base"
    size = 1

    def build(self, make_member: Callable[[], nn.Module]) -> nn.Module:
        raise NotImplementedError
