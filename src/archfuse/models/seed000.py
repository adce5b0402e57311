"""Seed CNN 000: three convolutions (32, 64, 128 channels), a 1000-unit fc layer, a classifier."""

from torch import Tensor, nn

from archfuse.models.shapes import require_min_size


class Seed000(nn.Module):
    """The CNN of source document seed-000.

    Shape correction: the document flattens a 128x7x7 map for 28x28 digits, which only holds if the
    3x3 convolutions keep the size (padding 1) and exactly two 2x2 poolings follow the first two
    convolutions (28 -> 14 -> 7). Both are made explicit here, and the flatten size is computed from
    the input (128 x H/4 x W/4), so 3x32x32 and 1x8x8 inputs work too.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, input_size: tuple[int, int] = (28, 28)):
        super().__init__()
        require_min_size("seed000", input_size, 4, "two 2x2 poolings")
        h, w = input_size[0] // 4, input_size[1] // 4
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(128 * h * w, 1000), nn.ReLU(), nn.Linear(1000, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
