"""The recipe contract: change the model before and after training, and say what changed."""

from typing import Any

from torch import nn


class Recipe:
    """A structure-optimization step. Both hooks default to "change nothing".

    ``prepare`` may replace the freshly built network before training (e.g. fold in a teacher,
    add regularisation); ``after_fit`` may change the trained network (prune, quantize, cut
    layers), fine-tuning it with ``fit`` if it needs to, and returns a report of what it changed
    (accuracy and cost before and after) that lands in summary.json under "recipe".
    """

    name = "base"

    def prepare(self, net: nn.Module) -> nn.Module:
        return net

    def after_fit(self, module: Any, datamodule: Any, fit: Any) -> dict[str, Any]:
        return {}
