"""The recipe contract: what a structure-optimization step may do around training.

A recipe is one file in this package implementing :class:`Recipe`, with its options in
conf/recipe/<name>.yaml (a chain step under its own name). Every seam defaults to "change nothing", so a
recipe overrides only what it needs. In order of a run:

- ``setup(run)``: once, when the run is built: the run's facts and services (``archfuse.context.RunContext``:
  shapes, seed, epochs, the data, the optimizer factory, loading a network from a checkpoint), for the
  recipe to keep what it needs;
- ``check(net, data)``: refuse, with a ConfigError naming the key, what the recipe cannot apply to
  (before any data is loaded or anything trained); ``data`` is an ``archfuse.context.DataView``;
- ``transform(net)``: the network to train (wrap it, add masks or observers, insert a block);
- ``loss_terms(logits, batch, net)`` and ``base_loss_weight``: the training loss becomes
  ``base_loss_weight * criterion(logits, y) + sum(loss_terms)``, ``net`` the network being trained; with
  ``uses_sample_index`` the batch is ``(x, y, index)``, the samples' indices into the split (to look up
  per-sample state such as a teacher's precomputed outputs);
- ``callbacks()``: Lightning callbacks added to the training run's Trainer;
- ``after_fit(step)``: after training, starting from the best weights: change ``step.net`` (prune,
  quantize, cut a block; assign ``step.net`` to replace it), fine-tune with ``step.fine_tune(epochs)``,
  and return what the step is about (sparsity, channels kept, ...). The run measures accuracy and cost
  before and after;
- ``evaluation_device``: "cpu" when the result can only be tested and timed there (int8 kernels);
- ``state(net)`` / ``restore(net, state)``: plain data and tensors describing how the trained network's
  structure differs from what ``transform`` builds; saved in every checkpoint, replayed on load, so a
  pruned, cut or int8 network reloads from its checkpoint (with weights_only).
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from archfuse.context import DataView, RunContext


@dataclass
class AfterFit:
    """What an after-fit step works with. ``net`` holds the weights to start from; a step that builds a
    new network (int8) assigns it to ``net``, and the run carries on with it."""

    net: nn.Module
    data: DataView
    run: RunContext
    log_dir: Path  # this step's own directory (its fine-tune is a TensorBoard run there)
    # fine_tune(epochs, lr=None) -> validation metrics: a fresh Trainer trains ``net`` for `epochs` more
    # epochs (at learning rate lr, if given) and leaves the best of them (on val/acc) in ``net``.
    fine_tune: Callable[..., dict[str, float]]
    # evaluate(split) -> {"acc": ..., "loss": ...} of ``net`` as it is now ("train", "val" or "test").
    evaluate: Callable[[str], dict[str, float]]


class Recipe:
    """A structure-optimization step (see the module docstring for the seams)."""

    base_loss_weight: float = 1.0
    evaluation_device: str | None = None
    uses_sample_index: bool = False  # batches then carry the samples' indices: (x, y, index)

    def setup(self, run: RunContext) -> None:
        """Keep what the recipe needs of the run (called once, when the run is built, before ``check``)."""

    def check(self, net: nn.Module, data: DataView) -> None:
        """Raise ConfigError for what this recipe cannot apply to."""

    def transform(self, net: nn.Module) -> nn.Module:
        return net

    def loss_terms(self, logits: Tensor, batch: tuple[Tensor, ...], net: nn.Module) -> dict[str, Tensor]:
        return {}

    def callbacks(self) -> list[Any]:
        return []

    def after_fit(self, step: AfterFit) -> dict[str, Any]:
        raise NotImplementedError  # a recipe without an after-fit step does not override this

    @property
    def has_after_fit(self) -> bool:
        return type(self).after_fit is not Recipe.after_fit

    def named_after_fit_steps(self) -> list[tuple[str, "Recipe"]]:
        """The after-fit steps to run, in order, with the names their reports carry."""
        return [(type(self).__name__.lower(), self)] if self.has_after_fit else []

    def state(self, net: nn.Module) -> Any:
        return None

    def restore(self, net: nn.Module, state: Any) -> nn.Module:
        return net

    # -- what the LightningModule calls ------------------------------------------------------
    def total_loss(self, base: Tensor, logits: Tensor, batch: tuple[Tensor, ...],
                   net: nn.Module) -> tuple[Tensor, dict[str, Tensor]]:
        """The training loss with this recipe's terms; the terms by name, for logging."""
        terms = self.loss_terms(logits, batch, net)
        loss = base if self.base_loss_weight == 1.0 else self.base_loss_weight * base
        for term in terms.values():
            loss = loss + term
        return loss, terms


class SurgeryRecipe(Recipe):
    """A recipe that edits the structure by operations it records in ``applied`` (plain data, one per
    edit) and can ``replay`` on a freshly built network: its checkpoint state is that list."""

    def __init__(self) -> None:
        # What the recipe did, in order (a run resumed from its final model may do it again): its state.
        self.applied: list[dict[str, Any]] = []

    @staticmethod
    def replay(net: nn.Module, op: dict[str, Any]) -> nn.Module:
        raise NotImplementedError

    def state(self, net: nn.Module) -> Any:
        return self.applied or None

    def restore(self, net: nn.Module, state: Any) -> nn.Module:
        self.applied = list(state)
        for op in self.applied:
            net = self.replay(net, op)
        return net
