"""The sweeper's flat keys (conf/hydra/sweeper/optuna.yaml), checked before any trial starts."""

from dataclasses import dataclass, field
from typing import Any

from archfuse.errors import ConfigError

KEY = "hydra.sweeper"


@dataclass
class Settings:
    n_trials: int | None = 20
    sampler: str = "tpe"
    seed: int | None = None
    storage: str | None = None
    study_name: str | None = None
    pruner: str = "median"
    n_jobs: int = 1
    max_failure_rate: float = 0.5
    heartbeat_interval: int = 10
    grace_period: int = 60
    sampler_args: dict[str, Any] = field(default_factory=dict)
    pruner_args: dict[str, Any] = field(default_factory=dict)
    constraints: dict[str, float] = field(default_factory=dict)
    scalarize: float | None = None
    rerun_repeats: bool = False
    params: dict[str, Any] = field(default_factory=dict)


def _int(name: str, value: Any, minimum: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{KEY}.{name}", f"must be an integer >= {minimum}, got {value!r}")


def read_settings(given: dict[str, Any]) -> Settings:
    known = Settings.__dataclass_fields__
    for name in given:
        if name not in known and name != "_target_":
            raise ConfigError(f"{KEY}.{name}", f"unknown key; the sweeper accepts: {', '.join(known)}")
    s = Settings(**{k: v for k, v in given.items() if k in known})
    _int("n_trials", s.n_trials, 1, allow_none=s.sampler == "grid")
    _int("n_jobs", s.n_jobs, 1)
    _int("seed", s.seed, 0, allow_none=True)
    _int("heartbeat_interval", s.heartbeat_interval, 1)
    _int("grace_period", s.grace_period, 2)
    rate = s.max_failure_rate
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
        raise ConfigError(f"{KEY}.max_failure_rate", f"must be a fraction between 0 and 1, got {rate!r}")
    if s.study_name is not None and (not isinstance(s.study_name, str) or not s.study_name.strip()
                                     or "/" in s.study_name):
        raise ConfigError(f"{KEY}.study_name", f"must be a name without '/', got {s.study_name!r}")
    if not isinstance(s.rerun_repeats, bool):
        raise ConfigError(f"{KEY}.rerun_repeats", f"must be true or false, got {s.rerun_repeats!r}")
    for name in ("sampler_args", "pruner_args", "constraints"):
        if not isinstance(getattr(s, name) or {}, dict):
            raise ConfigError(f"{KEY}.{name}", f"must be a mapping, got {getattr(s, name)!r}")
    if s.scalarize is not None and (isinstance(s.scalarize, bool) or not isinstance(s.scalarize, int | float)
                                    or s.scalarize < 0):
        raise ConfigError(f"{KEY}.scalarize", f"must be a weight >= 0 (lambda of metric - lambda * cost), "
                          f"got {s.scalarize!r}")
    for metric, limit in (s.constraints or {}).items():
        if isinstance(limit, bool) or not isinstance(limit, int | float):
            raise ConfigError(f"{KEY}.constraints.{metric}", f"must be an upper bound (a number), got {limit!r}")
    return s
