"""Samplers and pruners by name (``hydra.sweeper.sampler``, ``hydra.sweeper.pruner``), each seeded by
``hydra.sweeper.seed`` where it draws at random, with extra arguments from ``sampler_args``/``pruner_args``
checked against the Optuna class's own signature."""

import importlib.util
import math
from collections.abc import Callable
from typing import Any

import optuna

from archfuse.errors import ConfigError
from archfuse.options import check_options
from archfuse.summary import metric_value

class GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler without its ``study.stop()`` once the grid is covered (which works only
    inside study.optimize): the sweep loop stops by itself after the last cell (n_trials = cells)."""

    def after_trial(self, study, trial, state, values) -> None:
        return None


SAMPLERS: dict[str, Callable[[], type]] = {
    "tpe": lambda: optuna.samplers.TPESampler,
    "random": lambda: optuna.samplers.RandomSampler,
    "grid": lambda: GridSampler,
    "cmaes": lambda: optuna.samplers.CmaEsSampler,
    "nsga2": lambda: optuna.samplers.NSGAIISampler,
    "gp": lambda: optuna.samplers.GPSampler,
}
# Several objectives: the samplers that handle them (CMA-ES optimises one value).
MULTI_OBJECTIVE = ("tpe", "random", "grid", "nsga2", "gp")
_NEEDS = {"cmaes": "cmaes", "gp": "scipy"}

PRUNERS: dict[str, Callable[[], type] | None] = {
    "median": lambda: optuna.pruners.MedianPruner,
    "percentile": lambda: optuna.pruners.PercentilePruner,
    "hyperband": lambda: optuna.pruners.HyperbandPruner,
    "successive_halving": lambda: optuna.pruners.SuccessiveHalvingPruner,
    "none": None,
}
# A trial's first epochs are noisy: the median pruner waits for 5 finished trials and 1 reported epoch.
# The percentile pruner is the median pruner with another cut: by default a trial goes on only while it
# is in the best quarter of the trials at the same epoch (pruner_args.percentile=25), so it saves more.
PRUNER_DEFAULTS = {"median": {"n_startup_trials": 5, "n_warmup_steps": 1},
                   "percentile": {"percentile": 25.0, "n_startup_trials": 5, "n_warmup_steps": 1}}


def check_sampler(name: Any, n_objectives: int) -> str:
    key = "hydra.sweeper.sampler"
    if name not in SAMPLERS:
        raise ConfigError(key, f"unknown sampler {name!r}; choose one of: {', '.join(SAMPLERS)}")
    if n_objectives > 1 and name not in MULTI_OBJECTIVE:
        raise ConfigError(key, f"{name} optimises one objective, but this sweep has {n_objectives}; use nsga2")
    module = _NEEDS.get(name)
    if module and importlib.util.find_spec(module) is None:
        raise ConfigError(key, f"the {name} sampler needs the {module} package: pip install {module}")
    return name


def build_sampler(name: str, seed: int | None, args: dict[str, Any], grid: dict[str, list] | None = None,
                  constraints_func: Callable | None = None) -> optuna.samplers.BaseSampler:
    cls = SAMPLERS[name]()
    given: dict[str, Any] = dict(args or {})
    if name == "grid":
        given["search_space"] = grid
    if constraints_func is not None:
        if name not in ("tpe", "nsga2", "gp"):
            raise ConfigError("hydra.sweeper.constraints", f"the {name} sampler takes no constraints; use nsga2 or tpe")
        given["constraints_func"] = constraints_func
    check_options({k: v for k, v in (args or {}).items()}, cls, "hydra.sweeper.sampler_args",
                  given_by_code=("seed", "search_space", "constraints_func"))
    return cls(seed=seed, **given)


def check_pruner(name: Any, n_objectives: int, objective: list[str]) -> str:
    key = "hydra.sweeper.pruner"
    if name is None or name is False:
        name = "none"
    if name not in PRUNERS:
        raise ConfigError(key, f"unknown pruner {name!r}; choose one of: {', '.join(PRUNERS)}")
    if name != "none" and n_objectives > 1:
        raise ConfigError(key, f"Optuna cannot prune a study with several objectives ({', '.join(objective)}); "
                          "set hydra.sweeper.pruner=none for the Pareto front, or prune one scalarised objective, "
                          f"{objective[0]} - lambda * {objective[-1]}, with hydra.sweeper.scalarize=LAMBDA")
    if name != "none" and objective[0].startswith("cost/"):
        raise ConfigError(key, f"{objective[0]} is measured after training, so no epoch can report it; set "
                          "hydra.sweeper.pruner=none or optimise a val/ metric")
    return name


def build_pruner(name: str, args: dict[str, Any]) -> optuna.pruners.BasePruner:
    factory = PRUNERS[name]
    if factory is None:
        return optuna.pruners.NopPruner()
    cls = factory()
    given = {**PRUNER_DEFAULTS.get(name, {}), **(args or {})}
    check_options(given, cls, "hydra.sweeper.pruner_args")
    return cls(**given)


def constraint_values(constraints: dict[str, float], summary: dict[str, Any]) -> list[float]:
    """Optuna's constraint values of a finished trial: <= 0 is feasible (metric - its upper bound)."""
    out = []
    for metric, limit in constraints.items():
        value = metric_value(summary, metric)
        out.append(float(value) - float(limit) if value is not None else math.inf)
    return out
