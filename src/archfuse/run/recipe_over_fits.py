"""A recipe chain's reports over repeated fits: each step's before/after figures as mean and std."""

import statistics
from typing import Any

from archfuse.summary import std_dev


def _numbers(rows: list[dict[str, Any]]) -> list[str]:
    return [k for k, v in rows[0].items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and all(k in r for r in rows)]


def _mean(values: list[float]) -> float:
    """The mean; a count that is the same in every fit (params, batch size) stays an int."""
    same_int = all(isinstance(v, int) for v in values) and len(set(values)) == 1
    return values[0] if same_int else statistics.fmean(values)


def recipe_over_fits(reports: list[list[dict[str, Any]]], sample: bool = True) -> list[dict[str, Any]]:
    """One report per step: the first fit's report with its before/after figures (and the step's own
    numbers, such as sparsity) replaced by their means over the fits, their stds beside them
    (``before_std``, ``after_std``, ``<key>_std``) and every fit's report under ``runs``. The std is the
    sample std (over seeds) or, with ``sample=False``, the population std (over folds), as the run's metrics."""
    if len(reports) < 2 or not reports[0]:
        return reports[0] if reports else []
    steps = []
    for i, first in enumerate(reports[0]):
        fits = [r[i] for r in reports]
        step: dict[str, Any] = {**first, "fits": len(fits)}
        for key in _numbers(fits):
            values = [f[key] for f in fits]
            step[key], step[f"{key}_std"] = _mean(values), std_dev(values, sample)
        for side in ("before", "after"):
            if all(isinstance(f.get(side), dict) for f in fits):
                rows = [f[side] for f in fits]
                names = _numbers(rows)
                step[side] = {k: _mean([r[k] for r in rows]) for k in names}
                step[f"{side}_std"] = {k: std_dev([r[k] for r in rows], sample) for k in names}
        step["runs"] = fits
        steps.append(step)
    return steps
