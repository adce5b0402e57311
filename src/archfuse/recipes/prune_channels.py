"""recipe=prune_channels: structured pruning that physically removes conv channels and fc neurons.

Torch-Pruning's dependency graph finds what each removed channel touches (the next conv's inputs, a
batch norm, the flattened features the head reads) and shrinks all of them together; the classifier's
outputs are never pruned. ``ratio`` of the channels of each group go (``scope=uniform``), or of all
groups ranked together (``scope=global``, at most 90% of any one layer), ranked by ``importance``:
l1 / l2 weight magnitude, bn_scale (batch-norm gammas; needs batch norm) or taylor (|weight x grad| on
training batches). ``iterative_steps`` reach the ratio in equal steps, each followed by
``fine_tune_epochs`` of fine-tuning.

A channel ratio p leaves about (1-p)^2 of a conv's parameters (both its inputs and outputs shrink);
the step reports both the measured share and (1-p)^2. The new layer shapes are the recipe's state in
every checkpoint, so archfuse-eval rebuilds the pruned network before loading its weights.
"""

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archfuse.checks import check_choice, check_count, check_fraction
from archfuse.cost import count_params
from archfuse.context import DataView
from archfuse.errors import ConfigError
from archfuse.recipes.base import AfterFit, Recipe
from archfuse.recipes.surgery import apply_shapes, channel_widths, classifier_linear, module_shapes

KEY = "recipe.prune_channels"
IMPORTANCES = ("l1", "l2", "bn_scale", "taylor")
MAX_LAYER_RATIO = 0.9  # global ranking never empties a layer
TAYLOR_BATCHES, TAYLOR_BATCH_SIZE = 4, 256


def importance_of(name: str) -> Any:
    import torch_pruning as tp

    if name == "bn_scale":
        return tp.importance.BNScaleImportance()
    if name == "taylor":
        return tp.importance.GroupTaylorImportance()
    return tp.importance.GroupMagnitudeImportance(p=1 if name == "l1" else 2)


def taylor_gradients(net: nn.Module, data: DataView) -> None:
    """Gradients of the training loss on a few batches, for Taylor importance."""
    x, y = data.split_tensors("train")
    device = next(net.parameters()).device
    net.zero_grad()
    was_training = net.training
    net.eval()
    for i in range(TAYLOR_BATCHES):
        xb = x[i * TAYLOR_BATCH_SIZE:(i + 1) * TAYLOR_BATCH_SIZE].to(device)
        yb = y[i * TAYLOR_BATCH_SIZE:(i + 1) * TAYLOR_BATCH_SIZE].to(device)
        if len(yb):
            F.cross_entropy(net(xb), yb).backward()
    net.train(was_training)


class PruneChannels(Recipe):
    def __init__(self, *, ratio: float, importance: str, scope: str, iterative_steps: int, fine_tune_epochs: int,
                 fine_tune_lr: float | None):
        self.ratio, self.importance, self.scope = ratio, importance, scope
        self.iterative_steps, self.fine_tune_epochs, self.fine_tune_lr = iterative_steps, fine_tune_epochs, fine_tune_lr
        self.shapes: dict[str, Any] | None = None  # the layer shapes after pruning: this recipe's state

    def check(self, net: nn.Module, data: DataView) -> None:
        check_fraction(f"{KEY}.ratio", self.ratio)
        check_choice(f"{KEY}.importance", self.importance, IMPORTANCES)
        check_choice(f"{KEY}.scope", self.scope, ("uniform", "global"))
        check_count(f"{KEY}.iterative_steps", self.iterative_steps, 1)
        check_count(f"{KEY}.fine_tune_epochs", self.fine_tune_epochs)
        kinds = {type(m) for m in net.modules() if not list(m.children())}
        if not any(issubclass(k, nn.Conv2d | nn.Linear) for k in kinds):
            raise ConfigError(KEY, f"{type(net).__name__} has no Conv2d or Linear layer whose channels could go")
        if self.importance == "bn_scale" and not any(issubclass(k, nn.modules.batchnorm._BatchNorm) for k in kinds):
            raise ConfigError(f"{KEY}.importance", f"bn_scale ranks channels by batch-norm scales, but "
                              f"{type(net).__name__} has no BatchNorm layer; use l1, l2 or taylor "
                              "(or model.batch_norm=true with model=convnet)")
        unknown = sorted({k.__name__ for k in kinds if issubclass(k, nn.modules.conv._ConvNd)
                          and not issubclass(k, nn.Conv2d | nn.Conv1d)})
        if unknown:
            raise ConfigError(KEY, f"cannot prune channels of {', '.join(unknown)} layers; Conv2d, Conv1d, "
                              "Linear and batch norm are handled")

    def pruner(self, net: nn.Module, input_shape: tuple[int, ...]) -> Any:
        import torch_pruning as tp

        device = next(net.parameters()).device
        head = classifier_linear(net)
        return tp.pruner.MetaPruner(
            net, torch.zeros(1, *input_shape, device=device), importance=importance_of(self.importance),
            global_pruning=self.scope == "global", pruning_ratio=self.ratio, iterative_steps=self.iterative_steps,
            max_pruning_ratio=MAX_LAYER_RATIO, ignored_layers=[head] if head is not None else [])

    def after_fit(self, step: AfterFit) -> dict[str, Any]:
        net, shape = step.net, tuple(step.run.input_shape)
        widths, params = channel_widths(net), count_params(net)
        was_training = net.training
        net.eval()
        pruner = self.pruner(net, shape)
        net.train(was_training)
        steps = []
        for i in range(self.iterative_steps):
            if self.importance == "taylor":
                taylor_gradients(net, step.data)
            pruner.step()
            net.zero_grad(set_to_none=True)
            self.shapes = module_shapes(net)  # saved with every checkpoint from here on
            val = step.evaluate("val")["acc"]
            tuned = step.fine_tune(self.fine_tune_epochs, lr=self.fine_tune_lr) if self.fine_tune_epochs else {}
            steps.append({"step": i + 1, "params": count_params(net), "val_acc_pruned": val,
                          "val_acc_fine_tuned": tuned.get("val/acc_best", val)})
        after = channel_widths(net)
        kept = count_params(net) / params
        return {"ratio": self.ratio, "importance": self.importance, "scope": self.scope,
                "channels": {name: [widths[name], after[name]] for name in widths if name in after},
                "params_kept": round(kept, 4), "params_kept_expected": round((1 - self.ratio) ** 2, 4),
                "steps": steps,
                "summary": f"params kept {kept:.3f} (expected (1-p)^2 = {(1 - self.ratio) ** 2:.3f}); channels "
                           + ", ".join(f"{widths[n]}->{after[n]}" for n in widths if n in after)}

    def state(self, net: nn.Module) -> Any:
        return self.shapes

    def restore(self, net: nn.Module, state: Any) -> nn.Module:
        self.shapes = state
        return apply_shapes(net, state)
