"""One training run: validate, fit, apply the recipe, test the best checkpoint, report."""

import shutil
from pathlib import Path
from typing import Any

from archfuse.cost import measure_cost
from archfuse.ddp import end_job, follow_parent
from archfuse.errors import ConfigError
from archfuse.instantiate import build
from archfuse.objective import objective_result
from archfuse.report import hparams_of, log_confusion_matrix, log_hparams, versions, write_json_atomic
from archfuse.training import build_trainer, quiet_lightning
from archfuse.validate import validate


def fit_and_test(config: dict[str, Any], datamodule, module, log_dir: Path, choices: dict[str, str],
                 hparams_extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train one model, test its best checkpoint, and log the result under ``log_dir``."""
    quiet = bool(config.get("quiet"))
    trainer = build_trainer(config, log_dir, quiet=quiet)
    trainer.fit(module, datamodule=datamodule, ckpt_path=config.get("ckpt_path"), weights_only=True)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    recipe_report = build(config["recipe"], "recipe").after_fit(module, datamodule, trainer.fit)
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    # A recipe that changed the network is tested as it now is; otherwise the best checkpoint is.
    ckpt = "best" if best and not recipe_report else None
    tested = trainer.test(module, datamodule=datamodule, ckpt_path=ckpt, weights_only=True, verbose=not quiet)
    metrics.update({k: float(v) for k, v in tested[0].items()})
    result: dict[str, Any] = {"metrics": metrics, "recipe": recipe_report, "best_checkpoint": best or None}
    if trainer.is_global_zero:
        c = config["cost"]
        result["cost"] = measure_cost(module.net, module.input_shape, c["batch_size"], c["repeats"], c["warmup"])
        result["confusion_matrix"] = module.confusion_matrix.tolist()
        if trainer.logger is not None:
            step = trainer.global_step
            log_confusion_matrix(trainer.logger, module.confusion_matrix, step)
            final = {**metrics, **{f"cost/{k}": v for k, v in result["cost"].items()}}
            log_hparams(trainer.logger, {**hparams_of(config, choices), **(hparams_extra or {})}, final, step)
    result["is_global_zero"] = trainer.is_global_zero
    return result


def discard_run_dir(run_dir: Path) -> None:
    """A run stopped by bad input leaves nothing behind that looks like a run."""
    if run_dir.is_dir() and not (run_dir / "summary.json").exists() and not (run_dir / "checkpoints").exists():
        shutil.rmtree(run_dir, ignore_errors=True)


def train(config: dict[str, Any], choices: dict[str, str], is_rank_zero: bool = True) -> float:
    """The whole run. Returns its objective (config key ``objective``; the mean over folds under cv)."""
    follow_parent()
    run_dir = Path(config["paths"]["run_dir"])
    quiet_lightning(bool(config.get("quiet")))
    try:
        summary = _fit_run(config, choices, run_dir)
    except BaseException as err:
        # bad input, found before training (or, for sizes only known then, at data loading)
        if isinstance(err, ConfigError) and is_rank_zero:
            discard_run_dir(run_dir)
        end_job(failed=True)  # this error is the one to report, not the other ranks' reaction to it
        raise
    end_job()
    if summary is None:  # a non-zero DDP rank: rank 0 reports
        return float("nan")
    payload = {"config": config, "choices": choices, **summary, "versions": versions(), "status": "ok"}
    write_json_atomic(run_dir / "summary.json", payload)
    print_summary(payload, run_dir)  # printed in quiet mode too: it is the run's one line of result
    return objective_result(config, payload)


def _fit_run(config: dict[str, Any], choices: dict[str, str], run_dir: Path) -> dict[str, Any] | None:
    parts = validate(config)
    folds = (config.get("cv") or {}).get("folds") or 0
    if folds:
        from archfuse.cv import cross_validate

        return cross_validate(config, folds, run_dir, choices)
    result = fit_and_test(config, parts.datamodule, parts.module, run_dir, choices)
    if not result["is_global_zero"]:
        return None
    return {"metrics": result["metrics"], "cost": result["cost"], "recipe": result["recipe"],
            "best_checkpoint": result["best_checkpoint"], "confusion_matrix": result["confusion_matrix"]}


def print_summary(payload: dict[str, Any], run_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    m, c = payload["metrics"], payload.get("cost") or {}
    table = Table(title="archfuse run", show_header=False)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")  # long run directories wrap instead of being cut
    rows = [("val/acc_best", f"{m.get('val/acc_best', float('nan')):.4f}"),
            ("test/acc", f"{m.get('test/acc', float('nan')):.4f}")]
    if "cv" in payload:
        cv = payload["cv"]
        rows.append(("cv folds", f"{len(cv['folds'])}: val/acc_best {cv['mean']['val/acc_best']:.4f} "
                                 f"± {cv['std']['val/acc_best']:.4f}"))
    if c:
        rows += [("params", f"{c['params']:,}"), ("MACs", f"{c['macs']:,}"),
                 ("size", f"{c['size_bytes'] / 1024:.1f} KiB"),
                 ("latency", f"{c['latency_ms']:.3f} ms (batch {c['latency_batch_size']}, CPU)")]
    rows.append(("run directory", str(run_dir)))
    for key, value in rows:
        table.add_row(key, value)
    Console(width=120).print(table)

