"""The run's objective: which of its final metrics a sweeper optimises, and in which direction.

``objective`` names one metric or a list of them (several objectives: a Pareto front), as they appear
in summary.json: ``val/acc_best``, ``val/loss``, ``cv/val_acc_mean``, ``cost/params``, ``cost/macs``,
``cost/latency_ms``, ... ``objective_direction`` is ``max`` or ``min`` (or a list); when null, losses
and costs are minimised and everything else is maximised.
"""

from typing import Any

from archfuse.errors import ConfigError
from archfuse.summary import COST, SELECTABLE, TEST, metric_value, reported_metrics


def objective_names(config: dict[str, Any]) -> list[str]:
    names = config.get("objective") or "val/acc_best"
    return [names] if isinstance(names, str) else list(names)


def objective_directions(config: dict[str, Any]) -> list[str]:
    names = objective_names(config)
    given = config.get("objective_direction")
    if given is None:
        return ["min" if ("loss" in n or n.startswith(COST)) else "max" for n in names]
    given = [given] if isinstance(given, str) else list(given)
    if len(given) != len(names) or any(d not in ("max", "min") for d in given):
        raise ConfigError("objective_direction", f"must be max or min, one per objective ({len(names)}: "
                          f"{', '.join(names)}), or null to infer them; got {config.get('objective_direction')}")
    return given


def check_objective(config: dict[str, Any]) -> None:
    """Before any work: the objective names a metric a run can report, and never the test split."""
    names = objective_names(config)
    if not names:
        raise ConfigError("objective", "names no metric; give e.g. objective=val/acc_best")
    for name in names:
        if not isinstance(name, str):
            raise ConfigError("objective", f"must be a metric name or a list of them, got {name!r}")
        if name.startswith(TEST):
            raise ConfigError("objective", f"{name} is measured on the test split, which must not choose a "
                              "model; use a validation metric such as val/acc_best or val/loss")
        if not name.startswith(SELECTABLE):
            raise ConfigError("objective", f"unknown metric {name!r}; use a metric of summary.json such as "
                              "val/acc_best, val/loss, cv/val_acc_mean or cost/params")
    objective_directions(config)


def objective_values(config: dict[str, Any], summary: dict[str, Any]) -> list[float]:
    """The objective metrics of a finished run's summary (``cost/x`` reads ``summary["cost"]["x"]``)."""
    values = []
    for name in objective_names(config):
        value = metric_value(summary, name)
        if value is None:
            raise ConfigError("objective", f"this run reported no {name!r}; it reported: "
                              f"{', '.join(reported_metrics(summary))}")
        values.append(float(value))
    return values


def objective_result(config: dict[str, Any], summary: dict[str, Any]) -> float | list[float]:
    """What the run returns to a sweeper: one float, or a list for several objectives."""
    values = objective_values(config, summary)
    return values[0] if isinstance(config.get("objective") or "", str) else values


def objective_record(config: dict[str, Any], summary: dict[str, Any]) -> dict[str, list]:
    """The objective as summary.json records it, so tools that rank runs (compare, a sweep's best trials)
    read what the run was optimised for: names, directions and values, one each per objective."""
    return {"names": objective_names(config), "directions": objective_directions(config),
            "values": objective_values(config, summary)}
