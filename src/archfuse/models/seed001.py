"""Seed CNN 001: two 5x5 convolutions with 20 channels, then a classifier on 320 features."""

from torch import Tensor, nn

from archfuse.models.shapes import conv_out, require_min_size


class Seed001(nn.Module):
    """The CNN of source document seed-001.

    Shape correction: with unpadded 5x5 convolutions a 28x28 input becomes 24 -> 12 -> 8 -> 4, so
    the flatten is 20x4x4 = 320, the document's figure; the document's fc layer therefore maps
    320 features to the classes. The flatten size is computed from the input instead of being
    hard-coded (3x32x32 gives 20x5x5 = 500). Inputs smaller than 16x16 cannot pass two unpadded
    5x5 convolutions and two poolings; they are refused with a clear error.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, input_size: tuple[int, int] = (28, 28)):
        super().__init__()
        require_min_size("seed001", input_size, 16, "two unpadded 5x5 convolutions and two 2x2 poolings")
        h, w = (conv_out(conv_out(s, 5) // 2, 5) // 2 for s in input_size)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 20, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(20, 20, 5), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(20 * h * w, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
