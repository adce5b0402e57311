"""recipe=cut: remove conv blocks, re-fit what follows, fine-tune.

``blocks=[i, ...]`` names blocks by index in the trained network (0 = first, -1 = last); when it is
empty, ``last=k`` removes the last k. A block is a conv and the layers after it up to the next conv (batch norm, activation, pool).
After the cut, a conv whose input channels changed and the head layer that reads the flattened features
are rebuilt (freshly initialised) for their new input size; everything else keeps its trained weights.
The removed block indices are the recipe's state: loading replays the same cut.
"""

from typing import Any

from torch import nn

from archfuse.checks import check_count, is_int
from archfuse.context import DataView
from archfuse.errors import ConfigError
from archfuse.recipes.base import AfterFit, SurgeryRecipe
from archfuse.recipes.surgery import blocks, feature_sequential, remove_block

KEY = "recipe.cut"


class Cut(SurgeryRecipe):
    def __init__(self, *, blocks: list[int], last: int, fine_tune_epochs: int, fine_tune_lr: float | None):
        self.blocks, self.last = list(blocks or []), last
        self.fine_tune_epochs, self.fine_tune_lr = fine_tune_epochs, fine_tune_lr
        super().__init__()

    def check(self, net: nn.Module, data: DataView) -> None:
        check_count(f"{KEY}.last", self.last)
        check_count(f"{KEY}.fine_tune_epochs", self.fine_tune_epochs)
        if not self.blocks and not self.last:
            raise ConfigError(KEY, "nothing to cut: give blocks=[i, ...] (indices, 0 = first) or last=k")
        n = len(blocks(feature_sequential(net, KEY)[1]))
        if not self.blocks and self.last >= n:
            raise ConfigError(f"{KEY}.last", f"the model has {n} conv blocks; at most {n - 1} can be cut")
        for i in self.blocks:
            if not is_int(i) or not -n <= i < n:
                raise ConfigError(f"{KEY}.blocks", f"block {i!r} does not exist: the model has {n} conv blocks "
                                  f"(0..{n - 1})")
        if len({i % n for i in self.blocks}) >= n:
            raise ConfigError(f"{KEY}.blocks", f"cutting {len(set(self.blocks))} of {n} conv blocks leaves none")

    def indices(self, net: nn.Module) -> list[int]:
        n = len(blocks(feature_sequential(net, KEY)[1]))
        chosen = {i % n for i in self.blocks} if self.blocks else range(n - self.last, n)
        return sorted(chosen, reverse=True)  # from the back, so earlier indices stay valid

    @staticmethod
    def replay(net: nn.Module, state: dict[str, Any]) -> nn.Module:
        for i in state["removed"]:
            remove_block(net, i, tuple(state["input_shape"]), KEY)
        return net

    def after_fit(self, step: AfterFit) -> dict[str, Any]:
        net = step.net
        before = len(blocks(feature_sequential(net, KEY)[1]))
        op = {"removed": self.indices(net), "input_shape": list(step.run.input_shape)}
        self.replay(net, op)
        self.applied.append(op)  # from here on, every checkpoint (the fine-tune's too) records the cut
        cut_val = step.evaluate("val")["acc"]
        if self.fine_tune_epochs:
            step.fine_tune(self.fine_tune_epochs, lr=self.fine_tune_lr)
        removed = sorted(op["removed"])
        return {"removed_blocks": removed, "blocks_before": before, "blocks_after": before - len(removed),
                "val_acc_cut_before_fine_tune": cut_val,
                "summary": f"blocks {before} -> {before - len(removed)} (removed {removed}), head rebuilt"}
