"""What happens after training, on the best weights: the recipes' after-fit steps (each measured
before and after), then the ensemble's combiner fitted on held-out predictions. The plug-ins get what
they work with as typed objects (recipes.base.AfterFit, ensembles.base.CombinerData), with the services
only the run can carry out (fine-tune, train members on a fold, log) as functions."""

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from archfuse.build import build_run, run_context
from archfuse.context import RunContext
from archfuse.cost import measure_cost
from archfuse.ensembles.base import CombinerData
from archfuse.evaluation import member_logits, split_metrics
from archfuse.recipes.base import AfterFit
from archfuse.trainer import build_trainer

STEP_DEVICE_CPU = "cpu"


def load_weights(module: Any, path: str | Path) -> None:
    """The weights of a checkpoint this run wrote, into ``module`` (same structure), weights_only."""
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    module.load_state_dict(state)


def measure(module: Any, datamodule: Any, config: dict[str, Any]) -> dict[str, float]:
    """Accuracy on val and test and the cost of ``module.net`` as it is now: a step's before or after."""
    val, test = split_metrics(module.net, datamodule, "val"), split_metrics(module.net, datamodule, "test")
    c = config["cost"]
    cost = measure_cost(module.net, module.input_shape, c["batch_size"], c["repeats"], c["warmup"], c["max_seconds"])
    return {"val/acc": val["acc"], "val/loss": val["loss"], "test/acc": test["acc"], **cost}


def fine_tune(module: Any, datamodule: Any, config: dict[str, Any], log_dir: Path, quiet: bool,
              epochs: int, lr: float | None = None) -> dict[str, float]:
    """Train ``module.net`` as it is now for ``epochs`` more epochs with a fresh Trainer and optimizer
    (at learning rate ``lr`` if given), logging to ``log_dir``; keep the best epoch's weights (val/acc)."""
    module.val_acc_best.reset()
    with module.learning_rate(lr):
        trainer = build_trainer(config, log_dir, quiet=quiet, resumable=False, max_epochs=int(epochs), min_epochs=None)
        trainer.fit(module, datamodule=datamodule)
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if best:
        load_weights(module, best)
    return {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}


def run_recipe_steps(module: Any, datamodule: Any, config: dict[str, Any], run_dir: Path,
                     quiet: bool) -> list[dict[str, Any]]:
    """Each after-fit step of the recipe chain, in order, each from the previous step's network.
    Returns one report per step: its name, what it says about itself, and before/after figures."""
    reports, context = [], run_context(module, datamodule)
    for i, (name, recipe) in enumerate(module.recipe.named_after_fit_steps(), start=1):
        before = measure(module, datamodule, config)
        step = after_fit_step(module, datamodule, config, context, run_dir / f"recipe_{i}_{name}", quiet)
        about = recipe.after_fit(step) or {}
        module.net = step.net  # the step may have built a new network (int8)
        if recipe.evaluation_device == STEP_DEVICE_CPU:
            module.net = module.net.cpu()
        reports.append({"name": name, **about, "before": before, "after": measure(module, datamodule, config)})
    return reports


def after_fit_step(module: Any, datamodule: Any, config: dict[str, Any], context: RunContext, log_dir: Path,
                   quiet: bool) -> AfterFit:
    """An after-fit step's view of the run. Its services act on ``step.net``, whatever the step assigns to
    it: a fine-tune trains it inside the run's module. The first fine-tune logs to the step's directory,
    each further one (an iterative schedule's) to ``fine_tune_<k>`` inside it, so their checkpoints and
    TensorBoard runs stay apart."""
    calls = 0

    def fine_tune_step(epochs: int, lr: float | None = None) -> dict[str, float]:
        nonlocal calls
        calls += 1
        module.net = step.net
        return fine_tune(module, datamodule, config, log_dir if calls == 1 else log_dir / f"fine_tune_{calls}",
                         quiet, epochs, lr)

    def evaluate(split: str) -> dict[str, float]:
        return split_metrics(step.net, datamodule, split)

    step = AfterFit(net=module.net, data=datamodule, run=context, log_dir=log_dir, fine_tune=fine_tune_step,
                    evaluate=evaluate)
    return step


def fit_ensemble(module: Any, datamodule: Any, config: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """The ensemble strategy fits its combiner (weights, stacker, thresholds) on held-out predictions."""
    cache: dict[str, Any] = {}

    def logits_of(split: str) -> tuple[Tensor, Tensor]:
        if split not in cache:
            cache[split] = member_logits(module.net, datamodule, split)
        return cache[split]

    data = CombinerData(data=datamodule, log_dir=run_dir, member_logits=logits_of,
                        fit_on_fold=lambda fold, folds: members_on_fold(config, run_dir, fold, folds),
                        log_scalars=lambda scalars: log_scalars(module, scalars))
    return module.ensemble.fit(module.net, data) or {}


def members_on_fold(config: dict[str, Any], run_dir: Path, fold: int, folds: int) -> tuple[Tensor, Tensor]:
    """Fresh members (the run's config, a seed of their own) trained on the other folds of the train+val
    pool; their logits on held-out fold ``fold`` and its targets."""
    parts = build_run({**config, "seed": int(config["seed"]) + 1000 * (fold + 1)})
    parts.datamodule.fold = (fold, folds)
    trainer = build_trainer(config, run_dir / f"stack_oof_fold_{fold}", quiet=True, resumable=False)
    trainer.fit(parts.module, datamodule=parts.datamodule)
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if best:
        load_weights(parts.module, best)
    return member_logits(parts.module.net, parts.datamodule, "val")  # the held-out fold


def log_scalars(module: Any, scalars: dict[str, float]) -> None:
    """Scalars at step 0 in the TensorBoard run of the module's Trainer (none without a logger)."""
    logger = module.logger
    if logger is None or not hasattr(logger, "experiment"):
        return
    writer = logger.experiment
    for tag, value in scalars.items():
        writer.add_scalar(tag, value, 0)
    writer.flush()


def post_training(module: Any, datamodule: Any, config: dict[str, Any], run_dir: Path,
                  quiet: bool) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    reports = run_recipe_steps(module, datamodule, config, run_dir, quiet)
    ensemble = fit_ensemble(module, datamodule, config, run_dir) if module.ensemble.has_fit else None
    return reports, ensemble
