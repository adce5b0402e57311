"""What happens after training, on the best weights: the recipes' after-fit steps (each measured
before and after), then the ensemble's combiner fitted on held-out predictions."""

from functools import partial
from pathlib import Path
from typing import Any

import torch

from archfuse.cost import measure_cost
from archfuse.ensembles.base import CombinerData
from archfuse.recipes.base import AfterFit
from archfuse.run.evaluation import accuracy, member_logits
from archfuse.trainer import build_trainer

STEP_DEVICE_CPU = "cpu"


def load_weights(module: Any, path: str | Path) -> None:
    """The weights of a checkpoint this run wrote, into ``module`` (same structure), weights_only."""
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    module.load_state_dict(state)


def measure(module: Any, datamodule: Any, config: dict[str, Any]) -> dict[str, float]:
    """Accuracy on val and test and the cost of ``module.net`` as it is now: a step's before or after."""
    val, test = accuracy(module.net, datamodule, "val"), accuracy(module.net, datamodule, "test")
    c = config["cost"]
    cost = measure_cost(module.net, module.input_shape, c["batch_size"], c["repeats"], c["warmup"])
    return {"val/acc": val["acc"], "val/loss": val["loss"], "test/acc": test["acc"], **cost}


def fine_tune(module: Any, datamodule: Any, config: dict[str, Any], log_dir: Path, quiet: bool,
              epochs: int, lr: float | None = None) -> dict[str, float]:
    """Train ``module.net`` as it is now for ``epochs`` more epochs with a fresh Trainer and optimizer
    (at learning rate ``lr`` if given), logging to ``log_dir``; keep the best epoch's weights (val/acc)."""
    module.val_acc_best.reset()
    module.lr_override = lr
    try:
        trainer = build_trainer(config, log_dir, quiet=quiet, resumable=False, max_epochs=int(epochs), min_epochs=None)
        trainer.fit(module, datamodule=datamodule)
    finally:
        module.lr_override = None
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if best:
        load_weights(module, best)
    return {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}


def run_recipe_steps(module: Any, datamodule: Any, config: dict[str, Any], run_dir: Path,
                     quiet: bool) -> list[dict[str, Any]]:
    """Each after-fit step of the recipe chain, in order, each from the previous step's network.
    Returns one report per step: its name, what it says about itself, and before/after figures."""
    reports = []
    for i, (name, recipe) in enumerate(module.recipe.named_after_fit_steps(), start=1):
        log_dir = run_dir / f"recipe_{i}_{name}"
        before = measure(module, datamodule, config)
        step = AfterFit(module=module, datamodule=datamodule, log_dir=log_dir,
                        fine_tune=_numbered_fine_tunes(module, datamodule, config, log_dir, quiet),
                        evaluate=partial(_evaluate_split, module, datamodule))
        about = recipe.after_fit(step) or {}
        if recipe.evaluation_device == STEP_DEVICE_CPU:
            module.net = module.net.cpu()
        reports.append({"name": name, **about, "before": before, "after": measure(module, datamodule, config)})
    return reports


def _numbered_fine_tunes(module: Any, datamodule: Any, config: dict[str, Any], log_dir: Path, quiet: bool):
    """A step's fine_tune: its first fine-tune logs to the step's directory, each further one (an iterative
    schedule's) to ``fine_tune_<k>`` inside it, so their checkpoints and TensorBoard runs stay apart."""
    calls = [0]

    def run(epochs: int, lr: float | None = None) -> dict[str, float]:
        calls[0] += 1
        where = log_dir if calls[0] == 1 else log_dir / f"fine_tune_{calls[0]}"
        return fine_tune(module, datamodule, config, where, quiet, epochs, lr)

    return run


def _evaluate_split(module: Any, datamodule: Any, split: str) -> dict[str, float]:
    return accuracy(module.net, datamodule, split)


def fit_combiner(module: Any, datamodule: Any, run_dir: Path) -> dict[str, Any]:
    """The ensemble strategy fits its combiner (weights, stacker, thresholds) on held-out predictions."""
    cache: dict[str, Any] = {}

    def logits_of(split: str):
        if split not in cache:
            cache[split] = member_logits(module.net, datamodule, split)
        return cache[split]

    data = CombinerData(module=module, datamodule=datamodule, log_dir=run_dir, member_logits=logits_of)
    return module.ensemble.fit(module.net, data) or {}


def post_training(module: Any, datamodule: Any, config: dict[str, Any], run_dir: Path,
                  quiet: bool) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    reports = run_recipe_steps(module, datamodule, config, run_dir, quiet)
    ensemble = fit_combiner(module, datamodule, run_dir) if module.ensemble.has_fit else None
    return reports, ensemble
