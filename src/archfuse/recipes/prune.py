"""recipe=prune: unstructured L1 magnitude pruning of conv kernels and linear weights.

``schedule=oneshot`` prunes the trained model's best weights to ``amount`` after fit; ``schedule=iterative``
also prunes during training, raising the sparsity linearly at the start of each epoch so the last epoch
trains (and validates) at ``amount``. Either way the after-fit step brings the best weights to exactly
``amount`` (an earlier, less sparse epoch may have been the best), fine-tunes with the masks in place
and makes the pruning permanent (``torch.nn.utils.prune.remove``): the checkpoint holds plain weights.
``scope=global`` ranks all weights together, ``scope=layer`` prunes ``amount`` of every layer.

Dense shapes are unchanged, so nothing runs faster: the step reports sparsity and the size of a sparse
encoding (a bit mask plus the non-zero values), not speed.
"""

from typing import Any

import torch
from lightning.pytorch import Callback
from torch import nn
from torch.nn.utils import prune

from archfuse.checks import check_choice, check_count, check_fraction
from archfuse.context import DataView
from archfuse.errors import ConfigError
from archfuse.recipes.base import AfterFit, Recipe

KEY = "recipe.prune"


def prunable(net: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def apply_masks(net: nn.Module, amount: float, scope: str) -> None:
    """L1 masks (weight_orig * weight_mask) on every conv and linear weight, to ``amount`` sparsity."""
    layers = [m for _, m in prunable(net)]
    if scope == "global":
        prune.global_unstructured([(m, "weight") for m in layers], pruning_method=prune.L1Unstructured,
                                  amount=amount)
    else:
        for m in layers:
            prune.l1_unstructured(m, "weight", amount=amount)


def make_permanent(net: nn.Module) -> None:
    for _, m in prunable(net):
        if prune.is_pruned(m):
            prune.remove(m, "weight")


def sparsity_report(net: nn.Module) -> dict[str, Any]:
    """Per-layer and global share of zero weights; bytes dense vs a sparse encoding (bit mask + values)."""
    layers, zeros, total, sparse_bytes = {}, 0, 0, 0
    pruned = set()
    for name, m in prunable(net):
        w = m.weight
        z = int((w == 0).sum())
        layers[name] = round(z / w.numel(), 4)
        zeros, total = zeros + z, total + w.numel()
        sparse_bytes += (w.numel() + 7) // 8 + (w.numel() - z) * w.element_size()
        pruned.add(id(w))
    others = [t for t in (*net.parameters(), *net.buffers()) if id(t) not in pruned]
    dense_other = sum(t.numel() * t.element_size() for t in others)
    dense = dense_other + sum(m.weight.numel() * m.weight.element_size() for _, m in prunable(net))
    return {"sparsity": round(zeros / max(total, 1), 4), "layer_sparsity": layers,
            "nonzero_weights": total - zeros, "dense_size_bytes": dense,
            "sparse_size_bytes": dense_other + sparse_bytes}


class IterativePruning(Callback):
    """Raises the sparsity at the start of each training epoch, linearly to ``amount`` at the last;
    pruned weights stay zero after every optimizer step. Each pruning is made permanent at once, so the
    weights keep their names and checkpoints stay plain (no weight_orig / weight_mask); no weights are
    reset to their initial values (no lottery-ticket rewinding). Lightning's ModelPruning keeps the
    weight_orig / weight_mask reparametrisation between epochs instead, so the best checkpoint's keys
    would depend on the epoch it came from."""

    def __init__(self, amount: float, scope: str):
        self.amount, self.scope = amount, scope
        self.masks: list[tuple[nn.Module, torch.Tensor]] = []
        self.history: list[float] = []  # the sparsity each epoch trained at

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        target = self.amount * (trainer.current_epoch + 1) / max(trainer.max_epochs or 1, 1)
        net = pl_module.net
        apply_masks(net, min(target, self.amount), self.scope)
        self.masks = [(m, m.weight_mask.detach().clone()) for _, m in prunable(net)]
        make_permanent(net)
        self.history.append(sparsity_report(net)["sparsity"])
        pl_module.log("train/sparsity", self.history[-1], on_step=False, on_epoch=True, sync_dist=True)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        with torch.no_grad():
            for m, mask in self.masks:
                m.weight.mul_(mask)


class Prune(Recipe):
    def __init__(self, *, amount: float, scope: str, schedule: str, fine_tune_epochs: int,
                 fine_tune_lr: float | None):
        self.amount, self.scope, self.schedule = amount, scope, schedule
        self.fine_tune_epochs, self.fine_tune_lr = fine_tune_epochs, fine_tune_lr

    def check(self, net: nn.Module, data: DataView) -> None:
        check_fraction(f"{KEY}.amount", self.amount)
        check_choice(f"{KEY}.scope", self.scope, ("global", "layer"))
        check_choice(f"{KEY}.schedule", self.schedule, ("oneshot", "iterative"))
        check_count(f"{KEY}.fine_tune_epochs", self.fine_tune_epochs)
        if not prunable(net):
            kinds = sorted({type(m).__name__ for m in net.modules() if not list(m.children())})
            raise ConfigError(KEY, f"{type(net).__name__} has no Conv2d or Linear layer to prune "
                              f"(it holds {', '.join(kinds)})")

    def callbacks(self) -> list[Any]:
        return [IterativePruning(self.amount, self.scope)] if self.schedule == "iterative" else []

    def after_fit(self, step: AfterFit) -> dict[str, Any]:
        net = step.net
        start = sparsity_report(net)["sparsity"]
        apply_masks(net, self.amount, self.scope)
        pruned_val = step.evaluate("val")["acc"]
        if self.fine_tune_epochs:
            step.fine_tune(self.fine_tune_epochs, lr=self.fine_tune_lr)  # masks keep pruned weights at zero
        make_permanent(net)
        report = sparsity_report(net)
        return {"amount": self.amount, "scope": self.scope, "schedule": self.schedule,
                "sparsity_from_training": start, "val_acc_pruned_before_fine_tune": pruned_val, **report,
                "summary": f"sparsity {report['sparsity']:.3f} ({self.scope}); sparse encoding "
                           f"{report['sparse_size_bytes'] / 1024:.1f} KiB vs dense "
                           f"{report['dense_size_bytes'] / 1024:.1f} KiB (dense shapes: no speed-up)"}

