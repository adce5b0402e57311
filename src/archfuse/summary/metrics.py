"""The metrics of summary.json: the one list of their names, what each means, which are TensorBoard's
HPARAMS columns (and in which order), which are averaged over seeds and folds, and a metric's value
read from a summary by its name (``cost/params`` lives in the ``cost`` section as ``params``)."""

import statistics
from dataclasses import dataclass
from typing import Any

STD = "_std"  # over seeds: a repeated metric's sample standard deviation is ``<name>_std`` beside its mean
COST = "cost/"  # cost/NAME is summary["cost"][NAME]; every other metric is summary["metrics"][name]
TEST = "test/"  # measured on the test split, which must never choose a model

# What a metric's name starts with, and where it comes from. An objective may name any family but test/.
FAMILIES = {
    "val/": "the validation split, measured during training",
    TEST: "the test split, measured once on the final model",
    "cv/": "cross-validation (cv.folds): a figure over the folds",
    COST: "what the final model costs (the summary's cost section)",
    "train/": "the training split, per epoch (a pruned run's summary)",
    "ensemble/": "an ensemble strategy's comparison with its members",
    "recipe/": "a recipe step's figures (TensorBoard scalars recipe/<i>_<name>/...)",
}


@dataclass(frozen=True)
class Metric:
    """``column``: its rank among the HPARAMS tab's metric columns (1 first; TensorBoard shows the first
    five), 0 when it is no column; ``std_column`` the same for ``<name>_std``. ``repeated``: over seeds and
    folds the summary holds its mean (and over seeds its std beside it)."""

    name: str
    meaning: str
    column: int = 0
    std_column: int = 0
    repeated: bool = False


METRICS = (
    Metric("val/acc", "validation accuracy of the last epoch"),
    Metric("val/acc_best", "best validation accuracy over the epochs (the default objective)", 1, 7, True),
    Metric("val/loss", "validation loss of the last epoch", repeated=True),
    Metric("test/acc", "test accuracy of the final model", 2, 8, True),
    Metric("test/loss", "test loss of the final model", 9, repeated=True),
    Metric("test/samples", "how many test samples were scored"),
    Metric("cv/val_acc_mean", "val/acc_best's mean over the folds (cv.folds)", 6),
    Metric("cost/params", "parameters of the final model", 3),
    Metric("cost/macs", "multiply-accumulates of one sample's forward pass", 4),
    Metric("cost/size_bytes", "bytes of every tensor the final model holds", 10),
    Metric("cost/latency_ms", "median CPU latency of one forward pass of latency_batch_size samples", 5),
    Metric("cost/latency_batch_size", "the batch size latency_ms was measured with"),
    Metric("ensemble/val_acc", "the ensemble's validation accuracy", 11, repeated=True),
    Metric("ensemble/val_gain_over_best", "validation accuracy over the best member's", 12, repeated=True),
    Metric("ensemble/val_gain_over_mean", "validation accuracy over the members' mean", 13, repeated=True),
    Metric("ensemble/mean_disagreement", "share of validation samples two members label differently, "
           "averaged over the pairs", 14),
    Metric("train/acc", "training accuracy of the last epoch"),
    Metric("train/loss", "training loss of the last step"),
)


def _columns() -> tuple[str, ...]:
    ranked = [(m.column, m.name) for m in METRICS if m.column]
    ranked += [(m.std_column, m.name + STD) for m in METRICS if m.std_column]
    return tuple(name for _, name in sorted(ranked))


# TensorBoard's HPARAMS metric columns, in the order offered (the first five are shown).
HPARAMS_COLUMNS = _columns()
# Averaged over seeds and folds, in this order (summary.json's metrics, cv and seeds sections).
REPEATED = tuple(m.name for m in METRICS if m.repeated)
# The families an objective may name.
SELECTABLE = tuple(f for f in FAMILIES if f != TEST)


def metric_value(summary: dict[str, Any], name: str) -> Any:
    """The value of metric ``name`` in a summary (``cost/params`` reads ``summary["cost"]["params"]``),
    None when the run did not report it."""
    if name.startswith(COST):
        return (summary.get("cost") or {}).get(name.removeprefix(COST))
    return (summary.get("metrics") or {}).get(name)


def reported_metrics(summary: dict[str, Any]) -> list[str]:
    """The names of every metric a summary reports: its metrics, sorted, then its costs as ``cost/NAME``."""
    return sorted(summary.get("metrics") or {}) + [f"{COST}{k}" for k in (summary.get("cost") or {})]


def std_dev(values: list[float], sample: bool = True) -> float:
    """The sample std (n - 1: over seeds, the spread of a new seed) or the population std (n: over folds,
    as scikit-learn's cross_val_score(...).std()); one value has no spread."""
    return statistics.stdev(values) if sample and len(values) > 1 else statistics.pstdev(values)
