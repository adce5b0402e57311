"""Batch-level augmentation: random per-sample affine transforms applied to a whole batch at once.

Each sample gets its own random transform, but the batch is transformed by one ``affine_grid`` +
``grid_sample`` on the batch's own device: no per-sample Python or PIL work in the training loop.
Parameters are drawn from a ``torch.Generator`` the caller seeds, so the stream is reproducible.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from archfuse.checks import check_choice, is_number
from archfuse.errors import ConfigError

KINDS = ("none", "shift", "affine")


@dataclass(frozen=True)
class BatchAugment:
    """``shift``: translation up to ``shift`` of the image side in each direction. ``affine``: the same,
    plus rotation up to ``rotation`` degrees either way, scaling by a factor in [1 - scale, 1 + scale] and
    horizontal shear up to ``shear`` degrees either way."""

    kind: str
    shift: float
    rotation: float
    scale: float
    shear: float

    def __post_init__(self) -> None:
        check_choice("data.augment", self.kind, KINDS, what="augmentation")
        limits = {"shift": (0.0, 0.5, "of the image side, below half the image"),
                  "rotation": (0.0, 180.0, "degrees, at most 180"),
                  "scale": (0.0, 1.0, "as a fraction, below 1 (a factor in [1 - scale, 1 + scale])"),
                  "shear": (0.0, 60.0, "degrees, at most 60")}
        for name, (low, high, what) in limits.items():
            value = getattr(self, name)
            if not is_number(value, low, high, high_open=name in ("shift", "scale")):
                raise ConfigError(f"data.{name}", f"must be a number >= {low:g}, {what}; got {value!r}")

    @property
    def active(self) -> bool:
        return self.kind != "none"

    def matrices(self, n: int, generator: torch.Generator) -> Tensor:
        """(n, 2, 3) sampling matrices for affine_grid, in normalised coordinates ([-1, 1] spans the image)."""
        u = torch.rand(n, 5, generator=generator) * 2 - 1  # five uniform draws in [-1, 1] per sample
        translate = u[:, :2] * (2 * self.shift)  # a shift of f image sides is 2f in normalised units
        if self.kind == "shift":
            linear = torch.eye(2).expand(n, 2, 2)
        else:
            angle = u[:, 2] * math.radians(self.rotation)
            factor = 1 + u[:, 3] * self.scale
            shear = torch.tan(u[:, 4] * math.radians(self.shear))
            cos, sin = torch.cos(angle), torch.sin(angle)
            rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
            shearing = torch.eye(2).repeat(n, 1, 1)
            shearing[:, 0, 1] = shear
            # The matrix maps output coordinates to where they sample the input: dividing by the factor
            # makes factor > 1 enlarge the digit.
            linear = rotation @ shearing / factor[:, None, None]
        return torch.cat([linear, translate[:, :, None]], dim=2)

    def __call__(self, x: Tensor, generator: torch.Generator, fill: Tensor | float = 0.0) -> Tensor:
        """``x`` (N, C, H, W) transformed sample by sample; pixels from outside the image take ``fill``
        (per channel: the value of a blank pixel after normalisation)."""
        if not self.active:
            return x
        theta = self.matrices(len(x), generator).to(device=x.device, dtype=x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        # grid_sample pads with zeros: shift so that zero is the blank value, then shift back.
        return F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + fill
