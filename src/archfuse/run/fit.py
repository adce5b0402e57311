"""One fit: train, continue from the best weights through the recipes' after-fit steps and the
ensemble's combiner, save the final model, test it, measure its cost, log it."""

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning
from lightning.pytorch import Trainer

from archfuse.build import Parts
from archfuse.checkpoint import RECORD_KEY, save_atomic
from archfuse.errors import RunPruned
from archfuse.cost import measure_cost
from archfuse.report import hparams_of, log_confusion_matrix, log_hparams, log_recipe_steps
from archfuse.run.after_fit import load_weights, post_training
from archfuse.summary import COST, fit_sections, training_record
from archfuse.trainer import build_trainer


def save_final(module: Any, path: Path, epoch: int = 0, global_step: int = 0) -> None:
    """The final model as a checkpoint: weights, run config and structure record (no optimizer state)."""
    save_atomic({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                 RECORD_KEY: module.structure_record(), "epoch": epoch, "global_step": global_step,
                 "pytorch-lightning_version": lightning.__version__}, path)


def trainer_for_test(trainer: Trainer, device: str | None, quiet: bool) -> Trainer:
    """The trainer that tests the final model: the run's own, or a single-process CPU one when the model
    runs only on CPU (int8 kernels) and the run trained elsewhere."""
    if device != "cpu" or trainer.strategy.root_device.type == "cpu":
        return trainer
    return Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                   enable_progress_bar=not quiet, enable_model_summary=False, use_distributed_sampler=False)


def fit_and_test(config: dict[str, Any], parts: Parts, log_dir: Path, choices: dict[str, str],
                 hparams_extra: dict[str, Any] | None = None, callbacks: Sequence[Any] = (),
                 resume_from: str | None = None) -> dict[str, Any]:
    """Train one model and test its final form; log the result under ``log_dir``. Returns the summary's
    sections of this fit (archfuse.summary.fit_sections) and ``is_global_zero``.

    ``callbacks`` are live objects for this fit's Trainer (a sweep's pruning callback); ``resume_from``
    is a checkpoint with optimizer state to continue from.
    """
    quiet = bool(config.get("quiet"))
    module, dm = parts.module, parts.datamodule
    module.data_spec = dm.data_spec()  # loads the data: every checkpoint of the fit records it
    trainer = build_trainer(config, log_dir, quiet=quiet, callbacks=[*module.recipe.callbacks(), *callbacks])
    started = time.perf_counter()
    try:
        if any(p.requires_grad for p in module.parameters()):
            trainer.fit(module, datamodule=dm, ckpt_path=resume_from, weights_only=True)
        else:  # nothing to train (an ensemble of loaded, frozen members): validate it as it is
            trainer.validate(module, datamodule=dm, verbose=False)
    except RunPruned as err:  # a pruned sweep trial is a run too: its one HPARAMS row, with what it reached
        if trainer.is_global_zero and trainer.logger is not None:
            hparams = {**hparams_of(config, choices), "trainer.precision": str(trainer.precision), "status": "pruned",
                       **(hparams_extra or {})}
            log_hparams(trainer.logger, hparams, err.metrics, trainer.global_step)
        raise
    training = training_record(str(trainer.precision), trainer.current_epoch, time.perf_counter() - started)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if best:
        load_weights(module, best)  # everything after training starts from the best weights
    recipe_reports, ensemble_report = post_training(module, dm, config, log_dir, quiet)
    final = best or None
    if recipe_reports or ensemble_report is not None:
        final = str(log_dir / "checkpoints" / "final.ckpt")
        if trainer.is_global_zero:
            save_final(module, Path(final), trainer.current_epoch, trainer.global_step)
    tester = trainer_for_test(trainer, module.recipe.evaluation_device, quiet)
    tested = tester.test(module, datamodule=dm, verbose=not quiet)
    metrics.update({k: float(v) for k, v in tested[0].items()})
    if ensemble_report is not None:
        metrics.update(ensemble_report.get("metrics") or {})  # validation figures a sweep may optimise
    cost = matrix = None
    if trainer.is_global_zero:
        c = config["cost"]
        cost = measure_cost(module.net, module.input_shape, c["batch_size"], c["repeats"], c["warmup"],
                        c["max_seconds"])
        matrix = module.confusion_matrix.tolist()
        if trainer.logger is not None:
            step = trainer.global_step
            log_confusion_matrix(trainer.logger, module.confusion_matrix, step)
            if recipe_reports:
                log_recipe_steps(trainer.logger, recipe_reports, step)
            final_metrics = {**metrics, **{f"{COST}{k}": v for k, v in cost.items()}}
            hparams = {**hparams_of(config, choices), "trainer.precision": training["precision"], **(hparams_extra or {})}
            log_hparams(trainer.logger, hparams, final_metrics, step)
    sections = fit_sections(metrics=metrics, training=training, recipe=recipe_reports, checkpoint=final,
                            best_checkpoint=best or None, cost=cost, ensemble=ensemble_report, confusion_matrix=matrix,
                            data=module.data_spec)
    return {**sections, "is_global_zero": trainer.is_global_zero}
