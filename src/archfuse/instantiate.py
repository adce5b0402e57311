"""hydra.utils.instantiate with errors that name the config key instead of a stack of frames."""

import re

from typing import Any

from hydra.errors import InstantiationException
from hydra._internal.utils import _locate
from hydra.utils import instantiate

from archfuse.errors import ConfigError


def locate(node: Any, key: str) -> Any:
    """The class or function ``node['_target_']`` names; a ConfigError naming ``key`` if it cannot be imported."""
    if not isinstance(node, dict) or "_target_" not in node:
        raise ConfigError(f"{key}._target_", "missing: choose an option of this config group or set _target_")
    try:
        return _locate(node["_target_"])
    except Exception:
        raise ConfigError(f"{key}._target_", f"cannot import {node['_target_']!r}; give the full dotted path of an "
                          "importable class or function (package.module.Name)") from None


def build(node: Any, key: str, **kwargs: Any) -> Any:
    """Instantiate ``node`` (the config at ``key``); a failure becomes one ConfigError naming ``key``."""
    if not isinstance(node, dict) or "_target_" not in node:
        raise ConfigError(f"{key}._target_", "missing: choose an option of this config group or set _target_")
    target = node["_target_"]
    try:
        return instantiate(node, **kwargs, _convert_="all")
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, ConfigError):
            raise cause from None
        if "Error locating target" in str(err):
            # the target that failed may be a nested one (a recipe inside a chain): name it and its key
            found = re.search(r"Error locating target '([^']+)'.*?(?:full_key: (\S+))?$", str(err), re.S)
            missing, sub = (found.group(1), found.group(2)) if found else (target, None)
            raise ConfigError(f"{key}.{sub}._target_" if sub else f"{key}._target_",
                              f"cannot import {missing!r}; give the full dotted path of an importable class or "
                              "function (package.module.Name)") from None
        raise ConfigError(key, f"{target} rejected its arguments: {cause or err}") from None
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        raise ConfigError(key, f"{target} rejected its arguments: {err}") from None
