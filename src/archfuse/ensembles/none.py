"""ensemble=none: one member network, trained and used as it is."""

from torch import Tensor, nn

from archfuse.ensembles.base import Ensemble


class NoEnsemble(Ensemble):
    def build(self, members: list[nn.Module], num_classes: int) -> nn.Module:
        (net,) = members
        return net

    def training_loss(self, net: nn.Module, batch: tuple[Tensor, ...], criterion: nn.Module) -> tuple[Tensor, Tensor]:
        logits = net(batch[0])
        return criterion(logits, batch[1]), logits
