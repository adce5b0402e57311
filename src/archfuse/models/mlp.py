"""A multilayer perceptron on the flattened image."""

from collections.abc import Sequence

from torch import Tensor, nn

from archfuse.checks import check_number, check_positive
from archfuse.models.activations import make_activation


def dense_layers(features: int, hidden_sizes: Sequence[int], num_classes: int, activation: str,
                 dropout: float) -> list[nn.Module]:
    """Linear -> activation [-> dropout] for each hidden size, then the linear classifier."""
    layers: list[nn.Module] = []
    for size in hidden_sizes:
        layers += [nn.Linear(features, size), make_activation(activation)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        features = size
    return [*layers, nn.Linear(features, num_classes)]


class MLP(nn.Module):
    """Hidden layers of ``hidden_sizes`` units on the flattened image; values in conf/model/mlp.yaml."""

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        input_size: tuple[int, int] = (28, 28),
        *,
        hidden_sizes: Sequence[int],
        activation: str,
        dropout: float,
    ):
        super().__init__()
        for i, size in enumerate(hidden_sizes):
            check_positive(f"model.hidden_sizes[{i}]", size, what="a positive int")
        check_number("model.dropout", dropout, 0.0, 1.0, high_open=True, what="in [0, 1)")
        features = in_channels * input_size[0] * input_size[1]
        self.net = nn.Sequential(nn.Flatten(), *dense_layers(features, hidden_sizes, num_classes, activation, dropout))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
