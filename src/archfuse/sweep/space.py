"""The search space: Hydra's sweep grammar (``choice``, ``range``, ``interval``, ``int()``, ``tag(log, ...)``)
turned into Optuna distributions, and a trial's values turned back into command-line overrides.

``choice(a, b)`` and ``a,b`` are categorical (lists and dicts allowed: they are kept as their override
text); ``range(start, stop[, step])`` is an integer (or stepped float) distribution over the values the
range yields, stop excluded, as Python's range; ``interval(lo, hi)`` is a float between lo and hi, an
integer with ``int(interval(lo, hi))``, sampled on a log scale with ``tag(log, ...)``. A plain value
fixes the key for every trial.
"""

import math
import re
from dataclasses import dataclass
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from archfuse.checks import is_number
from archfuse.errors import ConfigError

PARAMS_KEY = "hydra.sweeper.params"
_PLAIN = re.compile(r"^[\w.\-/:]+$")


@dataclass
class Space:
    """What each trial samples (``dims``) and what every trial fixes (``fixed``), as key -> value."""

    dims: dict[str, BaseDistribution]
    fixed: dict[str, str]

    def overrides(self, params: dict[str, Any]) -> list[str]:
        """A trial's overrides: the fixed values, then the sampled ones (categorical lists as their text)."""
        return [f"{k}={v}" for k, v in self.fixed.items()] + [f"{k}={format_value(params[k])}" for k in self.dims]


def _parser():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def flatten_params(params: Any, prefix: str = "") -> dict[str, Any]:
    """``{optimizer: {lr: ...}}`` (what ``hydra.sweeper.params.optimizer.lr=...`` makes) as ``optimizer.lr``."""
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise ConfigError(PARAMS_KEY, f"must map config keys to sweep expressions, got {params!r}")
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_params(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def format_value(value: Any) -> str:
    """A value as override text Hydra parses back to the same value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{format_value(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if _PLAIN.match(text) or (text.startswith(("[", "{")) and text.endswith(("]", "}"))):
        return text  # a categorical list or dict is stored as its override text already
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _number(key: str, value: Any) -> float | int:
    if not is_number(value) or not math.isfinite(value):
        raise ConfigError(key, f"bounds must be finite numbers, got {value!r}")
    return value


def to_distribution(key: str, sweep: Any) -> BaseDistribution:
    """One parsed sweep (Hydra's ChoiceSweep, RangeSweep or IntervalSweep) as an Optuna distribution."""
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

    log = "log" in sweep.tags
    if isinstance(sweep, ChoiceSweep):
        choices = [format_value(c) if isinstance(c, list | dict) else c for c in sweep.list]
        if not choices:
            raise ConfigError(key, "choice() needs at least one value")
        if len(set(map(repr, choices))) != len(choices):
            raise ConfigError(key, f"choice() lists a value twice: {sweep.list}")
        return CategoricalDistribution(choices)
    if isinstance(sweep, RangeSweep):
        start, stop, step = (_number(key, v) for v in (sweep.start, sweep.stop, sweep.step))
        values = list(sweep.range())
        if not values:
            raise ConfigError(key, f"range({start}, {stop}, {step}) is empty (stop is excluded)")
        if sweep.shuffle:
            return CategoricalDistribution(values)
        if all(isinstance(v, int) for v in (start, stop, step)):
            return IntDistribution(int(values[0]), int(values[-1]), step=int(step), log=log and step == 1)
        return FloatDistribution(float(values[0]), float(values[-1]), step=float(step))
    if isinstance(sweep, IntervalSweep):
        lo, hi = _number(key, sweep.start), _number(key, sweep.end)
        if lo >= hi:
            raise ConfigError(key, f"interval({lo}, {hi}) is empty: the low bound must be below the high one")
        if log and lo <= 0:
            raise ConfigError(key, f"tag(log, interval({lo}, {hi})) needs a low bound above 0")
        if isinstance(lo, int) and isinstance(hi, int):
            return IntDistribution(lo, hi, log=log)
        return FloatDistribution(float(lo), float(hi), log=log)
    raise ConfigError(key, f"unsupported sweep {sweep!r}; use choice, range or interval")


def parse_space(params: dict[str, Any], arguments: list[str]) -> tuple[Space, list[str]]:
    """The search space of ``hydra.sweeper.params`` and of the command line's sweep overrides (which win
    over params of the same key); returns it with the command line's other overrides, given to every trial."""
    dims: dict[str, BaseDistribution] = {}
    fixed: dict[str, str] = {}
    parser = _parser()
    for key, value in flatten_params(params).items():
        where = f"{PARAMS_KEY}.{key}"
        if isinstance(value, bool | int | float) or value is None:
            fixed[key] = format_value(value)
            continue
        if isinstance(value, list):  # a YAML list: a choice of its values
            value = "choice(" + ",".join(format_value(v) for v in value) + ")"
        try:
            override = parser.parse_overrides([f"{key}={value}"])[0]
        except Exception as err:
            raise ConfigError(where, f"malformed sweep {value!r}: {_first_line(err)}") from None
        if override.is_sweep_override():
            dims[key] = to_distribution(where, override.value())
        else:
            fixed[key] = override.get_value_element_as_str()
    rest = []
    for argument in arguments:
        try:
            override = parser.parse_overrides([argument])[0]
        except Exception as err:
            raise ConfigError(argument.split("=")[0], f"malformed override {argument!r}: {_first_line(err)}") from None
        key = override.get_key_element()
        if override.is_sweep_override():
            dims[key] = to_distribution(key, override.value())
            fixed.pop(key, None)
        else:
            rest.append(argument)
            if key in dims:  # a fixed value on the command line narrows a searched key to it
                del dims[key]
    return Space(dims=dims, fixed=fixed), rest


def grid_of(space: Space) -> dict[str, list[Any]]:
    """Every cell of the space, for GridSampler: categorical choices and ranges only."""
    grid = {}
    for key, dist in space.dims.items():
        if isinstance(dist, CategoricalDistribution):
            grid[key] = list(dist.choices)
        elif dist.step is not None and not getattr(dist, "log", False):
            n = int(round((dist.high - dist.low) / dist.step)) + 1
            grid[key] = [dist.low + i * dist.step for i in range(n)]
            if isinstance(dist, FloatDistribution):
                grid[key] = [round(v, 12) for v in grid[key]]
        else:
            raise ConfigError(f"{PARAMS_KEY}.{key}", "the grid sampler needs a finite set of values: use choice() "
                              "or range() for this key, or another sampler (hydra.sweeper.sampler=tpe)")
    return grid


def _first_line(err: Exception) -> str:
    lines = [ln for ln in str(err).splitlines() if ln.strip() and not ln.startswith("See https")]
    return lines[-1] if lines else type(err).__name__
