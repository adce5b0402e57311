"""ConvNet: the configurable CNN family that spans the seed models."""

from torch import Tensor, nn

from archfuse.checks import check_count, check_number, check_positive
from archfuse.errors import ConfigError
from archfuse.models.activations import make_activation
from archfuse.models.mlp import dense_layers


class ConvNet(nn.Module):
    """``depth`` conv blocks, block i with ``width * 2**i`` channels; each block is
    conv (same padding) -> [batch norm] -> activation -> 2x2 max pool. Then a hidden fc layer of
    ``head_width`` units (0 leaves it out) and the classifier. width=32, depth=2, head_width=128
    is seed-003's shape. The options' values live in conf/model/convnet.yaml.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        input_size: tuple[int, int] = (28, 28),
        *,
        width: int,
        depth: int,
        activation: str,
        kernel_size: int,
        batch_norm: bool,
        dropout: float,
        head_width: int,
    ):
        super().__init__()
        for key, value in (("width", width), ("depth", depth), ("kernel_size", kernel_size)):
            check_positive(f"model.{key}", value, what="a positive int")
        if kernel_size % 2 == 0:
            raise ConfigError("model.kernel_size", f"must be odd so the padding keeps the size, got {kernel_size}")
        check_count("model.head_width", head_width, 0)
        check_number("model.dropout", dropout, 0.0, 1.0, high_open=True, what="in [0, 1)")
        max_depth = min(input_size).bit_length() - 1  # 2x2 pools that fit before the map is 1 pixel
        if depth > max_depth:
            h, w = input_size
            raise ConfigError(
                "model.depth",
                f"depth {depth} is too deep for {h}x{w} inputs: every block halves the feature map, "
                f"so at most {max_depth} blocks fit; use model.depth<={max_depth}",
            )
        make_activation(activation)  # fail on an unknown name before building anything
        blocks: list[nn.Module] = []
        channels = in_channels
        for i in range(depth):
            out = width * 2**i
            blocks.append(nn.Conv2d(channels, out, kernel_size, padding=kernel_size // 2, bias=not batch_norm))
            if batch_norm:
                blocks.append(nn.BatchNorm2d(out))
            blocks += [make_activation(activation), nn.MaxPool2d(2)]
            channels = out
        self.features = nn.Sequential(*blocks)
        h, w = input_size[0] >> depth, input_size[1] >> depth
        head: list[nn.Module] = [nn.Flatten(), nn.Dropout(dropout)] if dropout else [nn.Flatten()]
        hidden = [head_width] if head_width else []
        self.classifier = nn.Sequential(*head, *dense_layers(channels * h * w, hidden, num_classes, activation, dropout))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
