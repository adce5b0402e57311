"""scikit-learn's handwritten digits: 1797 real 8x8 images, shipped inside scikit-learn."""

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from archfuse.checks import check_count
from archfuse.data.datamodule import Arrays, TensorDataModule, check_share
from archfuse.errors import ConfigError


class DigitsDataModule(TensorDataModule):
    """The digits upsampled (bilinear) to 1x28x28 so MNIST-shaped models apply unchanged (held as float:
    the upsampled pixels are not bytes).

    ``val_fraction`` and ``test_fraction`` are shares of all 1797 images; the rest is training data.
    ``image_size=8`` keeps the original 8x8 images.
    """

    in_channels, num_classes = 1, 10

    def __init__(self, *, test_fraction: float, image_size: int, **kwargs):
        super().__init__(**kwargs)
        check_share("data.test_fraction", test_fraction)
        if self.val_fraction + test_fraction >= 1.0:
            raise ConfigError(
                "data.val_fraction",
                f"val_fraction ({self.val_fraction}) + test_fraction ({test_fraction}) must be below 1 "
                "so that training images remain",
            )
        check_count("data.image_size", image_size, 8)
        self.test_fraction = test_fraction
        self.input_size = (image_size, image_size)

    def load_arrays(self) -> Arrays:
        digits = load_digits()
        x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
        if self.input_size != (8, 8):
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False)
        y = torch.tensor(digits.target, dtype=torch.long)
        pool, test = train_test_split(torch.arange(len(y)).numpy(), test_size=self.test_fraction,
                                      random_state=self.seed, stratify=y.numpy())
        return Arrays(x[pool], y[pool], x[test], y[test])

    def arrays_key(self) -> tuple:
        return (self.test_fraction, self.seed, self.input_size)

    def pool_val_fraction(self) -> float:
        # val_fraction is a share of the whole set; the pool is what the test split leaves.
        return self.val_fraction / (1.0 - self.test_fraction)
