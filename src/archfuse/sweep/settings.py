"""The sweeper's flat keys (conf/hydra/sweeper/optuna.yaml), checked before any trial starts.

The YAML holds every key's default; Hydra hands the sweeper the composed node, and a partial dict (a
sweeper config of one's own, a test) is completed from the YAML's values."""

import copy
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from archfuse.checks import check_count, check_number, must_be
from archfuse.config_dir import config_dir
from archfuse.errors import ConfigError

KEY = "hydra.sweeper"


@dataclass
class Settings:
    n_trials: int | None
    sampler: str
    seed: int | None
    storage: str | None
    study_name: str | None
    pruner: str
    n_jobs: int
    max_failure_rate: float
    heartbeat_interval: int
    grace_period: int
    sampler_args: dict[str, Any]
    pruner_args: dict[str, Any]
    constraints: dict[str, float]
    scalarize: float | None
    rerun_repeats: bool
    params: dict[str, Any]


@functools.cache
def _yaml_values() -> dict[str, Any]:
    node = OmegaConf.load(Path(config_dir()) / "hydra" / "sweeper" / "optuna.yaml")
    return {k: v for k, v in OmegaConf.to_container(node).items() if k != "_target_"}


def default_settings() -> dict[str, Any]:
    """conf/hydra/sweeper/optuna.yaml's values of the sweeper's keys (a fresh copy)."""
    return copy.deepcopy(_yaml_values())


def read_settings(given: dict[str, Any]) -> Settings:
    known = Settings.__dataclass_fields__
    for name in given:
        if name not in known and name != "_target_":
            raise ConfigError(f"{KEY}.{name}", f"unknown key; the sweeper accepts: {', '.join(known)}")
    s = Settings(**{**default_settings(), **{k: v for k, v in given.items() if k in known}})
    check_count(f"{KEY}.n_trials", s.n_trials, 1, none_ok=s.sampler == "grid")
    check_count(f"{KEY}.n_jobs", s.n_jobs, 1)
    check_count(f"{KEY}.seed", s.seed, 0, none_ok=True)
    check_count(f"{KEY}.heartbeat_interval", s.heartbeat_interval, 1)
    check_count(f"{KEY}.grace_period", s.grace_period, 2)
    check_number(f"{KEY}.max_failure_rate", s.max_failure_rate, 0, 1, what="a fraction between 0 and 1")
    if s.study_name is not None and (not isinstance(s.study_name, str) or not s.study_name.strip()
                                     or "/" in s.study_name):
        raise must_be(f"{KEY}.study_name", "a name without '/'", s.study_name)
    if not isinstance(s.rerun_repeats, bool):
        raise must_be(f"{KEY}.rerun_repeats", "true or false", s.rerun_repeats)
    for name in ("sampler_args", "pruner_args", "constraints"):
        if not isinstance(getattr(s, name) or {}, dict):
            raise must_be(f"{KEY}.{name}", "a mapping", getattr(s, name))
    check_number(f"{KEY}.scalarize", s.scalarize, 0, what="a weight >= 0 (lambda of metric - lambda * cost)",
                 none_ok=True)
    for metric, limit in (s.constraints or {}).items():
        check_number(f"{KEY}.constraints.{metric}", limit, what="an upper bound (a number)")
    return s
