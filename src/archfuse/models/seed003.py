"""Seed CNN 003: conv 32 and conv 64 (3x3, padding 1), each pooled, fc 128, classifier."""

from torch import Tensor, nn

from archfuse.models.shapes import require_min_size


class Seed003(nn.Module):
    """The CNN of source document seed-003.

    Shape correction: the padded 3x3 convolutions keep the size and each 2x2 pooling halves it, so
    a 28x28 input reaches the fc layer as 64x7x7; the flatten size is computed from the input
    (64 x H/4 x W/4) rather than fixed, so 3x32x32 (64x8x8) and 1x8x8 (64x2x2) inputs work too.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, input_size: tuple[int, int] = (28, 28)):
        super().__init__()
        require_min_size("seed003", input_size, 4, "two 2x2 poolings")
        h, w = input_size[0] // 4, input_size[1] // 4
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * h * w, 128), nn.ReLU(), nn.Linear(128, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
