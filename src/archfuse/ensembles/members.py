"""What every shipped strategy shares: choosing its members (``size``, ``members``, ``checkpoints`` or the
best trials of a sweep, ``from_sweep`` with ``top_k``)
and the report written after the combiner is fitted (members' and ensemble's accuracy, gains,
pairwise disagreement, the fitted tensors), to summary.json and TensorBoard."""

import itertools
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from archfuse.ensembles.base import CombinerData, Ensemble, MemberSpec
from archfuse.errors import ConfigError

def model_config(name: str, key: str) -> dict[str, Any]:
    """conf/model/<name>.yaml, the one place a model's option values are written down."""
    from omegaconf import OmegaConf

    from archfuse.config_dir import config_dir

    path = Path(config_dir()) / "model" / f"{name}.yaml"
    if not isinstance(name, str) or not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ConfigError(key, f"unknown model config {name!r}; choose one of {', '.join(known)}, or give a "
                          "model config with _target_ (or {name: NAME, option: value} to override options)")
    return OmegaConf.to_container(OmegaConf.load(path))


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
    base = int(seed or 0)
    if members:
        return [MemberSpec(model=member_model(m, f"ensemble.members[{i}]"), seed=base + i,
                           key=f"ensemble.members[{i}]") for i, m in enumerate(members)]
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ConfigError("ensemble.size", f"must be a positive integer (the number of members), got {size!r}")
    return [MemberSpec(model=model, seed=base + i, key="model") for i in range(size)]


def check_weights(weights: list | None, key: str = "ensemble.weights") -> None:
    if weights is None:
        return
    if not isinstance(weights, list | tuple) or not weights or any(
            not isinstance(w, int | float) or isinstance(w, bool) or w < 0 for w in weights):
        raise ConfigError(key, f"must be a list of non-negative numbers, one per member, got {weights!r}")
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

    def __init__(self, size: int = 1, members: list | None = None, checkpoints: list | None = None,
                 from_sweep: str | None = None, top_k: int = 5):
        self.loaded_key = "ensemble.from_sweep" if from_sweep else "ensemble.checkpoints"
        if from_sweep:
            if members or checkpoints:
                raise ConfigError("ensemble.from_sweep", "give ensemble.from_sweep, ensemble.members or "
                                  "ensemble.checkpoints, not several")
            from archfuse.sweep_dir import top_checkpoints

            checkpoints = top_checkpoints(from_sweep, top_k)
        if not checkpoints and not members and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
            raise ConfigError("ensemble.size", f"must be a positive integer (the number of members), got {size!r}")
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
        log_scalars(data, report)
        return report

    def evaluate(self, net: nn.Module, member_logits: Tensor, data: CombinerData, split: str) -> Tensor:
        """The ensemble's logits on ``split`` (from its members' logits when the rule needs no more)."""
        return net.combiner(member_logits)


def log_scalars(data: CombinerData, report: dict[str, Any]) -> None:
    """The ensemble's figures as TensorBoard scalars of the run (tags ensemble/...)."""
    module = data.module
    logger = getattr(module, "logger", None) if getattr(module, "_trainer", None) is not None else None
    if logger is None or not hasattr(logger, "experiment"):
        return
    writer = logger.experiment  # report["metrics"] reach TensorBoard with the run's final metrics (HPARAMS)
    for name in ("acc", "gain_over_best", "gain_over_mean"):
        writer.add_scalar(f"ensemble/test_{name}", report["test"][name], 0)
    for split in ("val", "test"):
        for i, acc in enumerate(report[split]["member_acc"]):
            writer.add_scalar(f"ensemble/{split}_acc_member_{i}", acc, 0)
    for name, value in report["tensors"].items():
        flat = torch.as_tensor(value, dtype=torch.float).flatten()
        if flat.numel() <= 16:
            for i, v in enumerate(flat.tolist()):
                writer.add_scalar(f"ensemble/{name}_{i}", v, 0)
    writer.flush()
