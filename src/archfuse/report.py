"""Where results go besides summary.json (archfuse.summary): TensorBoard (scalars, HPARAMS, confusion
matrix) and the printed summary."""

from pathlib import Path
from typing import Any

from archfuse.summary import HPARAMS_COLUMNS


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
    # a group's class path repeats its choice (data=digits), _partial_ says nothing: fewer columns to scroll
    noise = {f"{group}._target_" for group in choices} | {k for k in hp if k.endswith("._partial_")}
    return {k: ("None" if v is None else v) for k, v in hp.items() if k not in noise}


def log_hparams(tb_logger: Any, hparams: dict[str, Any], metrics: dict[str, float], step: int,
                varied: set[str] | None = None, trial: str | None = None) -> None:
    """Write the HPARAMS session with the final metrics as its metric columns.

    ``varied``: the keys that set this run apart (listed first; by default the Hydra job's overrides);
    ``trial``: its Trial ID (by default the run's path, the part that tells runs apart first)."""
    from archfuse.tb_hparams import hparams_summaries, hydra_job, job_label, trial_id, varied_keys

    writer = tb_logger.experiment
    metrics = {k: float(v) for k, v in metrics.items() if k in HPARAMS_COLUMNS and v is not None}
    for key, value in metrics.items():
        writer.add_scalar(key, value, step)
    job = hydra_job()
    if varied is None:
        varied = varied_keys(hparams, job)
    log_dir = Path(writer.log_dir)
    if trial is None:
        trial = trial_id(log_dir, _output_dir_of(log_dir), job_label(job, varied - {"cv.fold", "seed"}))
    # every metric column is declared, so whichever run's declaration TensorBoard picks lists them all
    for summary in hparams_summaries(hparams, HPARAMS_COLUMNS, varied, trial):
        writer.file_writer.add_summary(summary)
    writer.flush()


def _output_dir_of(log_dir: Path) -> Path:
    """The outputs/ folder above a run's log directory (the folder ``tensorboard --logdir`` is given)."""
    for parent in log_dir.resolve().parents:
        if parent.name in ("runs", "multiruns", "sweeps"):
            return parent.parent
    return log_dir.parent


def log_recipe_steps(tb_logger: Any, reports: list[dict[str, Any]], step: int) -> None:
    """Each recipe step's figures as scalars: ``recipe/<i>_<name>/{before,after}/<metric>`` and the plain
    numbers the step says about itself (``recipe/1_prune/sparsity``)."""
    writer = tb_logger.experiment
    for i, report in enumerate(reports, start=1):
        tag = f"recipe/{i}_{report['name']}"
        for when in ("before", "after"):
            for key, value in (report.get(when) or {}).items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    writer.add_scalar(f"{tag}/{when}/{key}", value, step)
        for key, value in report.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                writer.add_scalar(f"{tag}/{key}", value, step)
    writer.flush()


def confusion_image(matrix: Any, cell: int = 24) -> Any:
    """A (3, H, W) heat map of the row-normalised confusion matrix: row = true class, column =
    predicted; the darker the blue, the larger the share. Drawn with torch: no plotting library is
    imported, which keeps matplotlib out of start-up."""
    import torch

    shares = matrix.float() / matrix.sum(dim=1, keepdim=True).clamp_min(1)
    image = torch.stack([1 - 0.85 * shares, 1 - 0.6 * shares, 1 - 0.15 * shares])  # white -> blue
    image = image.repeat_interleave(cell, dim=1).repeat_interleave(cell, dim=2)
    image[:, ::cell, :] = 0.75  # grid lines between cells
    image[:, :, ::cell] = 0.75
    return image


def log_confusion_matrix(tb_logger: Any, matrix: Any, step: int, tag: str = "test/confusion_matrix") -> None:
    tb_logger.experiment.add_image(tag, confusion_image(matrix), step, dataformats="CHW")
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


def _fmt_step(report: dict[str, Any]) -> str:
    before, after = report.get("before") or {}, report.get("after") or {}
    parts = [f"test/acc {before.get('test/acc', float('nan')):.4f} -> {after.get('test/acc', float('nan')):.4f}"]
    for key, label in (("params", "params"), ("macs", "MACs")):
        if key in before and key in after:
            parts.append(f"{label} {before[key]:,} -> {after[key]:,}")
    if "size_bytes" in before and "size_bytes" in after:
        parts.append(f"size {before['size_bytes'] / 1024:.1f} -> {after['size_bytes'] / 1024:.1f} KiB")
    if report.get("summary"):  # what the step says about itself (sparsity, channels kept, ...)
        parts.append(str(report["summary"]))
    return ", ".join(parts)


def _fmt_data(spec: dict[str, Any], shown: int = 10) -> str:
    """The data spec in a line: the classes (the first ``shown`` names) and the network's input shape."""
    classes = spec["classes"]
    names = ", ".join(classes[:shown]) + (f", ... ({len(classes) - shown} more)" if len(classes) > shown else "")
    c, h, w = spec["input_shape"]
    return f"{len(classes)} classes ({names}); images {c}x{h}x{w}"


def print_summary(payload: dict[str, Any], run_dir: Path) -> None:
    """The run's result as a small table: accuracy, folds, each recipe step before -> after, cost."""
    from rich.console import Console
    from rich.table import Table

    m, c = payload["metrics"], payload.get("cost") or {}
    table = Table(title="archfuse run", show_header=False)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    rows = [(name, f"{m.get(name, float('nan')):.4f}") for name in ("val/acc_best", "test/acc")]
    if "seeds" in payload:  # mean +- sample standard deviation over the seeds
        n = len(payload["seeds"]["runs"])
        rows = [(name, f"{m[name]:.4f} ± {m.get(name + '_std', 0.0):.4f} (mean ± std, {n} seeds)")
                for name in ("val/acc_best", "test/acc")]
    if "cv" in payload:
        cv = payload["cv"]
        rows.append(("cv folds", f"{len(cv['folds'])}: val/acc_best {cv['mean']['val/acc_best']:.4f} "
                                 f"± {cv['std']['val/acc_best']:.4f}"))
    if payload.get("data"):
        rows.append(("data", _fmt_data(payload["data"])))
    if payload.get("training"):
        t = payload["training"]
        fits = f" in {t['fits']} fits" if t.get("fits", 1) > 1 else ""
        rows.append(("training", f"{t['epochs']} epochs, {t['precision']}, {t['seconds']:.1f} s{fits}"))
    e = payload.get("ensemble") or {}
    if e.get("test"):
        t = e["test"]
        rows.append((f"ensemble ({e['members']})", f"test/acc {t['acc']:.4f}; members {', '.join(f'{a:.4f}' for a in t['member_acc'])}; "
                     f"gain over best {t['gain_over_best']:+.4f}, over mean {t['gain_over_mean']:+.4f}"))
    elif "test_acc_mean" in e:  # over repeats: mean ± std of the fits' gains
        rows.append((f"ensemble ({e['runs'][0]['members']})",
                     f"test gain over best member {e['test_gain_over_best_mean']:+.4f} ± {e['test_gain_over_best_std']:.4f}, "
                     f"over members' mean {e['test_gain_over_mean_mean']:+.4f} ± {e['test_gain_over_mean_std']:.4f}"))
    for i, step in enumerate(payload.get("recipe") or [], start=1):
        rows.append((f"recipe {i}: {step['name']}", _fmt_step(step)))
    if c:
        rows += [("params", f"{c['params']:,}"), ("MACs", f"{c['macs']:,}"),
                 ("size", f"{c['size_bytes'] / 1024:.1f} KiB"),
                 ("latency", f"{c['latency_ms']:.3f} ms (batch {c['latency_batch_size']}, CPU)")]
    for key, value in rows:
        table.add_row(key, value)
    Console(width=120).print(table)
    print(f"run directory: {run_dir}")  # whole, on one line, to copy: never wrapped by the table
