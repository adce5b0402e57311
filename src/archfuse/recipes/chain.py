"""An ordered chain of recipes, itself a recipe: ``recipe=[distill,prune_channels,quantize]``.

Each recipe's config lives under its own name (``recipe.prune_channels.ratio``), so options never
collide; the order of the list is the order of application: transforms run in order before training,
after-fit steps run in order after it, each starting from the previous step's network.
"""

import math
from typing import Any

from torch import Tensor, nn

from archfuse.context import DataView, RunContext
from archfuse.errors import ConfigError
from archfuse.recipes.base import Recipe


class RecipeChain(Recipe):
    def __init__(self, **steps: Any):
        for name, step in steps.items():
            if not isinstance(step, Recipe):
                raise ConfigError(f"recipe.{name}", f"builds a {type(step).__name__}, not an "
                                  "archfuse.recipes.base.Recipe; check its _target_")
        self.steps: dict[str, Recipe] = dict(steps)
        self.base_loss_weight = math.prod(step.base_loss_weight for step in self.steps.values())
        self.uses_sample_index = any(step.uses_sample_index for step in self.steps.values())
        devices = {step.evaluation_device for step in self.steps.values()} - {None}
        self.evaluation_device = "cpu" if "cpu" in devices else next(iter(devices), None)

    def named_after_fit_steps(self) -> list[tuple[str, Recipe]]:
        return [(name, step) for name, step in self.steps.items() if step.has_after_fit]

    @property
    def has_after_fit(self) -> bool:
        return bool(self.named_after_fit_steps())

    def setup(self, run: RunContext) -> None:
        for step in self.steps.values():
            step.setup(run)

    def check(self, net: nn.Module, data: DataView) -> None:
        for step in self.steps.values():
            step.check(net, data)

    def transform(self, net: nn.Module) -> nn.Module:
        for step in self.steps.values():
            net = step.transform(net)
        return net

    def loss_terms(self, logits: Tensor, batch: tuple[Tensor, ...], net: nn.Module) -> dict[str, Tensor]:
        terms: dict[str, Tensor] = {}
        for name, step in self.steps.items():
            for term, value in step.loss_terms(logits, batch, net).items():
                terms[name if term == name else f"{name}_{term}"] = value
        return terms

    def callbacks(self) -> list[Any]:
        return [cb for step in self.steps.values() for cb in step.callbacks()]

    def state(self, net: nn.Module) -> dict[str, Any]:
        return {name: step.state(net) for name, step in self.steps.items()}

    def restore(self, net: nn.Module, state: Any) -> nn.Module:
        for name, step in self.steps.items():
            if (state or {}).get(name) is not None:
                net = step.restore(net, state[name])
        return net
