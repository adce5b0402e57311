"""Repeated fits: k-fold cross-validation (``cv.folds=K``), repeats over seeds (``seeds=N``), or both.

Every fit is its own TensorBoard run: ``fold_k/`` for folds, ``seed_S/`` for seeds, ``seed_S/fold_k/``
for both. The run directory itself is a TensorBoard run too, whose HPARAMS row holds the means (and,
over seeds, the standard deviations). Under cross-validation a seed's figure is its mean over folds;
over seeds the result is the mean and the sample standard deviation of those figures (over folds alone,
the population standard deviation, as scikit-learn reports cross-validation).
"""

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from archfuse.build import build_run
from archfuse.report import hparams_of, log_hparams
from archfuse.run.fit import fit_and_test
from archfuse.run.recipe_over_fits import recipe_over_fits
from archfuse.summary import (COST, REPEATED, STD, cv_section, repeats_sections, seeds_section, std_dev,
                              training_record)
from archfuse.trainer import build_trainer


def repeat_seeds(config: dict[str, Any]) -> list[int]:
    """``seeds`` consecutive seeds from the run's ``seed`` (conf/train.yaml)."""
    seed = config["seed"]  # checked when the run was built (build.run_seed)
    return [seed + i for i in range(int(config.get("seeds") or 1))]


def _mean_std(rows: list[dict[str, float]], sample: bool = True) -> tuple[dict[str, float], dict[str, float]]:
    """Means and standard deviations: the sample std over seeds, the population std over folds (``std_dev``)."""
    names = [m for m in REPEATED if all(m in r for r in rows)]
    mean = {m: statistics.fmean(r[m] for r in rows) for m in names}
    return mean, {m: std_dev([r[m] for r in rows], sample) for m in names}


def ensemble_over_fits(reports: list[dict[str, Any]], sample: bool = True) -> dict[str, Any]:
    """Each fit's ensemble report, and over the fits the mean and std (sample or population, as
    ``_mean_std``) of the ensemble's accuracy and gains."""
    out: dict[str, Any] = {"runs": reports}
    if not all(isinstance(r.get("val"), dict) and isinstance(r.get("test"), dict) for r in reports):
        return out  # a strategy with its own report
    for split in ("val", "test"):
        for name in ("acc", "gain_over_best", "gain_over_mean"):
            values = [r[split][name] for r in reports]
            out[f"{split}_{name}_mean"] = statistics.fmean(values)
            out[f"{split}_{name}_std"] = std_dev(values, sample)
    return out


def _fit(config: dict[str, Any], log_dir: Path, choices: dict[str, str], tags: dict[str, Any],
         fold: tuple[int, int] | None, callbacks: list) -> dict[str, Any]:
    parts = build_run(config)
    parts.datamodule.fold = fold
    return fit_and_test(config, parts, log_dir, choices, tags, callbacks)


def run_repeats(config: dict[str, Any], run_dir: Path, choices: dict[str, str],
                callbacks_for: Callable[[int], list] | None = None) -> dict[str, Any] | None:
    """Every (seed, fold) fit of the run; the summary on rank 0 (None on the other DDP ranks)."""
    seeds, folds = repeat_seeds(config), int((config.get("cv") or {}).get("folds") or 0)
    per_seed, fold_rows, results, index = [], [], [], 0
    for seed in seeds:
        seed_config = {**config, "seed": seed}
        seed_dir = run_dir / f"seed_{seed}" if len(seeds) > 1 else run_dir
        rows = []
        for k in range(folds or 1):
            tags = {"seed": seed, **({"cv.fold": k} if folds else {})}
            log_dir = seed_dir / f"fold_{k}" if folds else seed_dir
            result = _fit(seed_config, log_dir, choices, tags, (k, folds) if folds else None,
                          callbacks_for(index) if callbacks_for else [])
            index += 1
            results.append(result)
            row = {m: result["metrics"][m] for m in REPEATED if m in result["metrics"]}
            rows.append(row)
            if folds:
                fold_rows.append({"seed": seed, "fold": k, **row})
        seed_mean = _mean_std(rows)[0] if folds else rows[0]
        per_seed.append({"seed": seed, **seed_mean, "checkpoint": results[-1]["checkpoint"]})
        if folds and len(seeds) > 1 and result["is_global_zero"]:  # each seed's directory: its fold means
            _log_means(config, choices, seed_dir, {**seed_mean, "cv/val_acc_mean": seed_mean["val/acc_best"]},
                       {"seed": seed, "cv.fold": "mean"}, results[-1]["cost"])
    if not results[-1]["is_global_zero"]:
        return None
    mean, std = _mean_std(per_seed)
    cost = results[0]["cost"]
    first = results[0]["training"]
    training = training_record(first["precision"], first["epochs"], sum(r["training"]["seconds"] for r in results),
                               fits=len(results))
    metrics, cv, over_seeds, ensemble = dict(mean), None, None, None
    if all("ensemble" in r for r in results):  # over folds the population std, as the cv metrics
        ensemble = ensemble_over_fits([r["ensemble"] for r in results], sample=not folds)
    if folds:
        metrics["cv/val_acc_mean"] = mean["val/acc_best"]
        fold_mean, fold_std = _mean_std(fold_rows, sample=False)
        cv = cv_section(fold_rows if len(seeds) > 1 else [{k: v for k, v in r.items() if k != "seed"}
                                                          for r in fold_rows], fold_mean, fold_std)
    if len(seeds) > 1:
        over_seeds = seeds_section(per_seed, mean, std)
        metrics.update({f"{m}{STD}": v for m, v in std.items()})
    tags = {"seed": "mean" if len(seeds) > 1 else seeds[0], **({"cv.fold": "mean"} if folds else {})}
    _log_means(config, choices, run_dir, metrics, tags, cost)
    return repeats_sections(metrics=metrics, training=training, cost=cost,
                            recipe=recipe_over_fits([r["recipe"] for r in results], sample=not folds),
                            ensemble=ensemble, cv=cv, seeds=over_seeds, data=results[0].get("data"))


def _log_means(config: dict[str, Any], choices: dict[str, str], log_dir: Path, metrics: dict[str, float],
               tags: dict[str, Any], cost: dict[str, Any] | None) -> None:
    logger = build_trainer({**config, "callbacks": {}}, log_dir, quiet=True).logger
    if logger is not None:
        final = {**metrics, **{f"{COST}{k}": v for k, v in (cost or {}).items()}}
        log_hparams(logger, {**hparams_of(config, choices), **tags}, final, 0)
