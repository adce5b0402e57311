"""Test-only recipes and an ensemble strategy: small plug-ins that prove the extension points carry
what the real recipes and strategies need (loss terms, transforms, after-fit steps with a fine-tune,
structure changes that reload, fitted combiners). They are not shipped with archfuse."""

from typing import Any

import torch
from torch import Tensor, nn

from archfuse.ensembles.base import Ensemble, MemberSpec
from archfuse.recipes.base import AfterFit, Recipe


class L1Term(Recipe):
    """Adds weight * sum |w| over the weight matrices and kernels to the loss."""

    def __init__(self, *, weight: float):
        self.weight = weight

    def loss_terms(self, logits: Tensor, batch: Any, net: nn.Module) -> dict[str, Tensor]:
        norm = sum(p.abs().sum() for p in net.parameters() if p.ndim > 1)
        return {"l1": self.weight * norm}


class Tagged(nn.Module):
    """Wraps a network; counts the training batches that pass through it."""

    def __init__(self, inner: nn.Module, tag: str):
        super().__init__()
        self.inner, self.tag = inner, tag
        self.register_buffer("train_batches", torch.zeros((), dtype=torch.long))

    def forward(self, x: Tensor) -> Tensor:
        if self.training and torch.is_grad_enabled():
            self.train_batches += 1
        return self.inner(x)


class Tag(Recipe):
    """Transforms the network before fit by wrapping it; after fit, records the tags it finds."""

    def __init__(self, tag: str, after: bool = False):
        self.tag, self.after = tag, after

    def transform(self, net: nn.Module) -> nn.Module:
        return Tagged(net, self.tag)

    def after_fit(self, step: AfterFit) -> dict[str, Any]:
        tags, net = [], step.net
        while isinstance(net, Tagged):
            tags.append(net.tag)
            net = net.inner
        return {"outer_to_inner": tags}

    @property
    def has_after_fit(self) -> bool:
        return self.after


class FineTune(Recipe):
    """After fit: the validation accuracy it starts from, then `epochs` epochs of fine-tuning."""

    def __init__(self, epochs: int):
        self.epochs = epochs

    def after_fit(self, step: AfterFit) -> dict[str, Any]:
        start = step.evaluate("val")["acc"]
        metrics = step.fine_tune(self.epochs, lr=1e-4)
        return {"start_val_acc": start, "fine_tune_val_acc_best": metrics.get("val/acc_best")}


class HalveFirstConv(Recipe):
    """After fit: keeps the first half of the first convolution's output channels (and the matching
    input channels of the next convolution), then fine-tunes. Its state is the kept channel count."""

    def __init__(self, fine_tune_epochs: int = 1):
        self.fine_tune_epochs = fine_tune_epochs

    @staticmethod
    def _convs(net: nn.Module) -> tuple[nn.Conv2d, nn.Conv2d]:
        first, second = [m for m in net.modules() if isinstance(m, nn.Conv2d)][:2]
        return first, second

    @staticmethod
    def _resize(net: nn.Module, keep: int) -> tuple[nn.Conv2d, nn.Conv2d]:
        first, second = HalveFirstConv._convs(net)
        new_first = nn.Conv2d(first.in_channels, keep, first.kernel_size, first.stride, first.padding,
                              bias=first.bias is not None)
        new_second = nn.Conv2d(keep, second.out_channels, second.kernel_size, second.stride, second.padding,
                               bias=second.bias is not None)
        for name, module in list(net.named_modules()):
            for child_name, child in list(module.named_children()):
                if child is first:
                    setattr(module, child_name, new_first)
                elif child is second:
                    setattr(module, child_name, new_second)
        return new_first, new_second

    def after_fit(self, step: AfterFit) -> dict[str, Any]:
        first, second = self._convs(step.net)
        keep = first.out_channels // 2
        new_first, new_second = self._resize(step.net, keep)
        with torch.no_grad():
            new_first.weight.copy_(first.weight[:keep])
            if first.bias is not None:
                new_first.bias.copy_(first.bias[:keep])
            new_second.weight.copy_(second.weight[:, :keep])
            if second.bias is not None:
                new_second.bias.copy_(second.bias)
        step.fine_tune(self.fine_tune_epochs)
        return {"channels_kept": keep}

    def state(self, net: nn.Module) -> Any:
        first, _ = self._convs(net)
        return {"keep": first.out_channels}

    def restore(self, net: nn.Module, state: Any) -> nn.Module:
        if self._convs(net)[0].out_channels != state["keep"]:
            self._resize(net, state["keep"])
        return net


def weighted_mean(member_logits: Tensor, weights: Tensor) -> Tensor:
    """Weighted average of the members' probabilities, as log-probabilities."""
    return (weights[:, None, None] * member_logits.softmax(-1)).sum(0).log()


class SeededMembers(Ensemble):
    """Members of the run's model, each with its own seed, averaged with weights fitted on validation
    data (proportional to each member's validation accuracy)."""

    combine = staticmethod(weighted_mean)

    def __init__(self, seeds: list[int]):
        self.seeds = list(seeds)

    def member_specs(self, model: dict[str, Any], seed: int | None) -> list[MemberSpec]:
        return [MemberSpec(model=model, seed=s, key=f"ensemble.seeds[{i}]") for i, s in enumerate(self.seeds)]

    def combiner_tensors(self, k: int, num_classes: int) -> dict[str, Tensor]:
        return {"weights": torch.full((k,), 1.0 / k)}

    def fit(self, net: nn.Module, data: Any) -> dict[str, Any]:
        logits, y = data.member_logits("val")
        acc = (logits.argmax(-1) == y).float().mean(1)
        net.combiner.weights.copy_(acc / acc.sum())
        return {"weights": net.combiner.weights.tolist(), "member_val_acc": acc.tolist()}


class RecordReturns:
    """A Hydra callback that writes each job's return value (what a sweeper receives) to its run directory."""

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        import json
        from pathlib import Path

        value = job_return.return_value
        Path(config.hydra.runtime.output_dir, "returned.json").write_text(json.dumps(value))

    def __getattr__(self, name: str) -> Any:  # every other Hydra callback hook does nothing
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)


class IndexProbe(Recipe):
    """Asks for the samples' indices in training batches (as a teacher cache or per-sample weights do)."""

    uses_sample_index = True
