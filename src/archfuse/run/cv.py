"""k-fold cross-validation: K models on stratified folds of the train+val pool, one run each."""

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from archfuse.build import build_run
from archfuse.report import hparams_of, log_hparams
from archfuse.run.fit import fit_and_test
from archfuse.trainer import build_trainer

CV_METRICS = ("val/acc_best", "test/acc", "test/loss")


def cross_validate(config: dict[str, Any], folds: int, run_dir: Path, choices: dict[str, str],
                   callbacks_for: Callable[[int], list] | None = None) -> dict[str, Any] | None:
    """Train fold k in ``run_dir/fold_k`` (its own TensorBoard run); return the summary on rank 0."""
    results = []
    for k in range(folds):
        parts = build_run(config)
        parts.datamodule.fold = (k, folds)
        callbacks = callbacks_for(k) if callbacks_for else ()
        results.append(fit_and_test(config, parts, run_dir / f"fold_{k}", choices, {"cv.fold": k}, callbacks))
    if not results[-1]["is_global_zero"]:
        return None
    per_fold = [{"fold": k, **{m: r["metrics"][m] for m in CV_METRICS if m in r["metrics"]}}
                for k, r in enumerate(results)]
    names = [m for m in CV_METRICS if all(m in f for f in per_fold)]
    mean = {m: statistics.fmean(f[m] for f in per_fold) for m in names}
    std = {m: statistics.pstdev([f[m] for f in per_fold]) for m in names}
    cost = results[0]["cost"]
    # The run directory itself is a TensorBoard run too, carrying the fold means in HPARAMS.
    logger = build_trainer({**config, "callbacks": {}}, run_dir, quiet=True).logger
    if logger is not None:
        final = {**mean, "cv/val_acc_mean": mean["val/acc_best"], **{f"cost/{k}": v for k, v in cost.items()}}
        log_hparams(logger, {**hparams_of(config, choices), "cv.fold": "mean"}, final, 0)
    return {"metrics": {**mean, "cv/val_acc_mean": mean["val/acc_best"]}, "cost": cost,
            "recipe": results[0]["recipe"], "cv": {"folds": per_fold, "mean": mean, "std": std}}
