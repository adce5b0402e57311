"""Where results go: TensorBoard (scalars, HPARAMS, confusion matrix) and summary.json."""

import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

# Final metrics shown as columns in TensorBoard's HPARAMS tab.
HPARAM_METRICS = ("val/acc_best", "test/acc", "test/loss", "cost/params", "cost/macs", "cost/size_bytes",
                  "cost/latency_ms", "cv/val_acc_mean")


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config -> {"model.width": 32, ...} with values TensorBoard accepts."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, bool | int | float | str):
            flat[name] = value
        else:
            flat[name] = str(value)  # None, lists
    return flat


def hparams_of(config: dict[str, Any], choices: dict[str, str]) -> dict[str, Any]:
    """The hyperparameters a reader compares runs by: group choices plus model, data, optimizer keys."""
    keep = ("model", "data", "optimizer", "scheduler", "recipe", "ensemble", "cv")
    hp = {f"{group}": choice for group, choice in choices.items() if group in keep + ("trainer",)}
    hp.update(flatten({k: config[k] for k in keep if k in config}))
    hp.update({"seed": config.get("seed"), "trainer.max_epochs": config.get("trainer", {}).get("max_epochs")})
    return {k: ("None" if v is None else v) for k, v in hp.items()}


def log_hparams(tb_logger: Any, hparams: dict[str, Any], metrics: dict[str, float], step: int) -> None:
    """Write the HPARAMS session with the final metrics as its metric columns."""
    from torch.utils.tensorboard.summary import hparams as hparams_summary

    writer = tb_logger.experiment
    metrics = {k: float(v) for k, v in metrics.items() if k in HPARAM_METRICS and v is not None}
    for key, value in metrics.items():
        writer.add_scalar(key, value, step)
    exp, ssi, sei = hparams_summary(hparams, {k: 0.0 for k in metrics})
    writer.file_writer.add_summary(exp)
    writer.file_writer.add_summary(ssi)
    writer.file_writer.add_summary(sei)
    writer.flush()


def log_confusion_matrix(tb_logger: Any, matrix: Any, step: int, tag: str = "test/confusion_matrix") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = matrix.numpy()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(counts, cmap="Blues")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_xticks(range(len(counts)))
    ax.set_yticks(range(len(counts)))
    for i in range(len(counts)):
        for j in range(len(counts)):
            if counts[i, j]:
                ax.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if counts[i, j] > counts.max() / 2 else "black")
    fig.tight_layout()
    tb_logger.experiment.add_figure(tag, fig, step)  # closes the figure
    tb_logger.experiment.flush()


def print_config_tree(cfg: Any) -> None:
    """The composed config as a tree of groups, each as resolved YAML (``print_config=true``)."""
    from omegaconf import DictConfig, OmegaConf
    from rich.console import Console
    from rich.syntax import Syntax
    from rich.tree import Tree

    tree = Tree("config")
    for key, node in cfg.items():
        text = OmegaConf.to_yaml(node, resolve=True) if isinstance(node, DictConfig) else str(node)
        tree.add(str(key)).add(Syntax(text, "yaml"))
    Console().print(tree)


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("archfuse", "torch", "torchvision", "lightning", "torchmetrics", "hydra-core"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def write_json_atomic(path: str | Path, payload: dict[str, Any]) -> None:
    """Write to a temporary file beside ``path`` and rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2, default=str)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
