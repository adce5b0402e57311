"""What every shipped strategy shares: choosing its members (``size``, ``members``, ``checkpoints`` or the
best trials of a sweep, ``from_sweep`` with ``top_k``)
and the report written after the combiner is fitted (members' and ensemble's accuracy, gains,
pairwise disagreement, the fitted tensors), to summary.json and TensorBoard."""

import itertools
from typing import Any

import torch
from torch import Tensor, nn

from archfuse.checks import check_positive, is_number, must_be
from archfuse.ensembles.base import CombinerData, Ensemble, MemberSpec
from archfuse.errors import ConfigError
from archfuse.models.build import model_config_names, named_model_config


SIZE = "a positive integer (the number of members)"


def model_config(name: str, key: str) -> dict[str, Any]:
    """conf/model/<name>.yaml as a member's model config."""
    node = named_model_config(name)
    if node is None:
        raise ConfigError(key, f"unknown model config {name!r}; choose one of {', '.join(model_config_names())}, "
                          "or give a model config with _target_ (or {name: NAME, option: value} to override options)")
    return node


def member_model(entry: Any, key: str) -> dict[str, Any]:
    """A member of ``ensemble.members``: a model config name, ``{name: NAME, overrides...}`` or a config."""
    if isinstance(entry, str):
        return model_config(entry, key)
    if isinstance(entry, dict) and "name" in entry:
        return {**model_config(entry["name"], f"{key}.name"), **{k: v for k, v in entry.items() if k != "name"}}
    if isinstance(entry, dict) and "_target_" in entry:
        return dict(entry)
    raise ConfigError(key, f"must be a model config name (seed003), {{name: NAME, option: value}} or a model "
                      f"config with _target_, got {entry!r}")


def choose_members(model: dict[str, Any], seed: int | None, size: int, members: list | None,
                   checkpoints: list | None, loaded_key: str = "ensemble.checkpoints") -> list[MemberSpec]:
    """``checkpoints`` (loaded, frozen, not retrained), else ``members`` (architectures trained together),
    else ``size`` copies of ``model`` with seeds seed, seed+1, ... (trained together)."""
    if sum(bool(x) for x in (members, checkpoints)) > 1:
        raise ConfigError("ensemble.members", "give ensemble.members or ensemble.checkpoints, not both")
    if checkpoints:
        return [MemberSpec(checkpoint=str(p), frozen=True, key=f"{loaded_key}[{i}]")
                for i, p in enumerate(checkpoints)]
    base = int(seed)
    if members:
        return [MemberSpec(model=member_model(m, f"ensemble.members[{i}]"), seed=base + i,
                           key=f"ensemble.members[{i}]") for i, m in enumerate(members)]
    check_positive("ensemble.size", size, what=SIZE)
    return [MemberSpec(model=model, seed=base + i, key="model") for i in range(size)]


def check_weights(weights: list | None, key: str = "ensemble.weights") -> None:
    if weights is None:
        return
    if not isinstance(weights, list | tuple) or not weights or not all(is_number(w, 0.0) for w in weights):
        raise must_be(key, "a list of non-negative numbers, one per member", weights)
    if sum(weights) <= 0:
        raise ConfigError(key, f"must not all be zero, got {list(weights)}")


def weight_tensor(weights: list | None, k: int, key: str = "ensemble.weights") -> Tensor:
    """Given weights normalised to sum 1 (uniform when none are given); their number must be ``k``."""
    if weights is None:
        return torch.full((k,), 1.0 / k)
    if len(weights) != k:
        raise ConfigError(key, f"has {len(weights)} values but the ensemble has {k} members; give one per member")
    w = torch.tensor([float(v) for v in weights])
    return w / w.sum()


def accuracy_of(logits: Tensor, y: Tensor) -> float:
    return float((logits.argmax(-1) == y).float().mean()) if len(y) else float("nan")


def disagreement(member_logits: Tensor) -> list[list[float]]:
    """Share of samples on which members i and j predict different classes (K x K, symmetric)."""
    pred = member_logits.argmax(-1)
    k = len(pred)
    table = [[0.0] * k for _ in range(k)]
    for i, j in itertools.combinations(range(k), 2):
        table[i][j] = table[j][i] = float((pred[i] != pred[j]).float().mean())
    return table


def plain(value: Any) -> Any:
    return value.tolist() if isinstance(value, Tensor) else value


class MemberEnsemble(Ensemble):
    """A strategy with members chosen by ``size``, ``members`` or ``checkpoints``. Subclasses fit their
    combiner's tensors in ``fit_combiner`` (nothing by default) and return what they fitted; ``fit``
    adds the comparison with the members."""

    def __init__(self, *, size: int, members: list | None, checkpoints: list | None, from_sweep: str | None,
                 top_k: int):
        self.loaded_key = "ensemble.from_sweep" if from_sweep else "ensemble.checkpoints"
        if from_sweep:
            if members or checkpoints:
                raise ConfigError("ensemble.from_sweep", "give ensemble.from_sweep, ensemble.members or "
                                  "ensemble.checkpoints, not several")
            from archfuse.sweep_dir import top_checkpoints

            checkpoints = top_checkpoints(from_sweep, top_k)
        if not checkpoints and not members:
            check_positive("ensemble.size", size, what=SIZE)
        self.size, self.members, self.checkpoints = size, list(members or []), list(checkpoints or [])

    def member_specs(self, model: dict[str, Any], seed: int | None) -> list[MemberSpec]:
        return choose_members(model, seed, self.size, self.members, self.checkpoints, self.loaded_key)

    def fit_combiner(self, net: nn.Module, data: CombinerData) -> dict[str, Any]:
        return {}

    def fit(self, net: nn.Module, data: CombinerData) -> dict[str, Any]:
        fitted = self.fit_combiner(net, data) or {}
        report: dict[str, Any] = {"strategy": type(self).__name__, "members": len(net.members)}
        if self.checkpoints:  # loaded members (from_sweep: best trial first)
            report["member_checkpoints"] = list(self.checkpoints)
        for split in ("val", "test"):
            logits, y = data.member_logits(split)
            member_acc = [accuracy_of(m, y) for m in logits]
            with torch.no_grad():
                acc = accuracy_of(self.evaluate(net, logits, data, split), y)
            best, mean = max(member_acc), sum(member_acc) / len(member_acc)
            report[split] = {"member_acc": member_acc, "acc": acc, "gain_over_best": acc - best,
                             "gain_over_mean": acc - mean}
            if split == "val":
                report["disagreement"] = disagreement(logits)
        pairs = [report["disagreement"][i][j] for i, j in itertools.combinations(range(len(net.members)), 2)]
        report["mean_disagreement"] = sum(pairs) / len(pairs) if pairs else 0.0
        report["metrics"] = {"ensemble/val_acc": report["val"]["acc"],
                             "ensemble/val_gain_over_best": report["val"]["gain_over_best"],
                             "ensemble/val_gain_over_mean": report["val"]["gain_over_mean"],
                             "ensemble/mean_disagreement": report["mean_disagreement"]}
        report["fitted"] = {name: plain(v) for name, v in fitted.items()}
        report["tensors"] = {name: plain(v) for name, v in net.combiner.tensors().items()}
        data.log_scalars(scalars_of(report))
        return report

    def evaluate(self, net: nn.Module, member_logits: Tensor, data: CombinerData, split: str) -> Tensor:
        """The ensemble's logits on ``split`` (from its members' logits when the rule needs no more)."""
        return net.combiner(member_logits)


def scalars_of(report: dict[str, Any]) -> dict[str, float]:
    """The ensemble's figures as TensorBoard scalars of the run (tags ensemble/...); ``report["metrics"]``
    reach TensorBoard with the run's final metrics (HPARAMS)."""
    scalars = {f"ensemble/test_{name}": report["test"][name] for name in ("acc", "gain_over_best", "gain_over_mean")}
    for split in ("val", "test"):
        for i, acc in enumerate(report[split]["member_acc"]):
            scalars[f"ensemble/{split}_acc_member_{i}"] = acc
    for name, value in report["tensors"].items():
        flat = torch.as_tensor(value, dtype=torch.float).flatten()
        if flat.numel() <= 16:
            for i, v in enumerate(flat.tolist()):
                scalars[f"ensemble/{name}_{i}"] = v
    return scalars
