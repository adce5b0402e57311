"""ensemble=none: one member network, used as it is."""

from collections.abc import Callable

from torch import nn

from archfuse.ensembles.base import Ensemble


class NoEnsemble(Ensemble):
    name = "none"
    size = 1

    def build(self, make_member: Callable[[], nn.Module]) -> nn.Module:
        return make_member()
