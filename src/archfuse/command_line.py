"""The command line checked against the config before Hydra runs anything: an unknown option of a
config group (``ensemble=nonsense``) or a misspelt key (``trainer.max_epoch=3``,
``hydra.sweeper.n_trial=5``) is one error naming the key and what it accepts, exit code 2, where
Hydra alone would print its own hint and exit 1.

The config is composed once here (about 0.1 s); a multirun's sweep overrides (``a,b``, ``choice()``,
``range()``, ``interval()``) are composed with their first value, so their keys are checked too.

Before that, a value written from the home directory (``data.root=~/data``: the shell leaves a ``~`` after
``=`` alone, and Hydra's parser refuses it) is expanded; and, before Hydra creates any directory, the
folder runs are written to must be one that can be created or written in."""

import json
import os
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

# Options that change what Hydra does with the command line: left to Hydra itself.
HYDRA_FLAGS = ("--cfg", "-c", "--help", "-h", "--hydra-help", "--info", "-i", "--config-path", "-cp",
               "--config-name", "-cn", "--config-dir", "-cd", "--resolve", "-p", "--package", "--shell-completion",
               "-sc", "--experimental-rerun", "--version")


def expand_home(argv: list[str]) -> list[str]:
    """``KEY=~/PATH`` (or ``KEY=~``) with the home directory written out, as the shell does for a word
    that starts with ``~``; ``~KEY`` (Hydra's delete) and options (``-m``, ``--cfg``) are left as given."""
    expanded = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key and not key.startswith(("-", "~")) and (value == "~" or value.startswith("~/")):
            arg = f"{key}={os.path.expanduser(value)}"
        expanded.append(arg)
    return expanded


def _first_value(override: Any) -> str:
    """A sweep override as a plain one, its first value (a list for a sweep of lists)."""
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

    value = override.value()
    if isinstance(value, ChoiceSweep):
        first = value.list[0]
    elif isinstance(value, RangeSweep):
        first = value.start
    elif isinstance(value, IntervalSweep):
        first = int(value.start) if "int" in (value.tags or set()) else value.start
    else:
        return override.input_line
    text = first if isinstance(first, str) else json.dumps(first) if isinstance(first, list | dict) else str(first)
    return f"{override.get_key_element()}={text}"


def _unknown_option(config_dir: str, group: str, option: str, known: list[str] | None = None) -> str:
    known = known or [p.stem for p in Path(config_dir, group).glob("*.yaml")]
    return f"{group}: unknown option {option!r}; choose one of {', '.join(sorted(known))} (the files of conf/{group}/)"


def _parse(argv: list[str]) -> list[Any] | None:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return OverridesParser.create().parse_overrides([a for a in argv if a not in ("-m", "--multirun")])
    except Exception:  # malformed: Hydra (or sweep.multirun_overrides.check_overrides) reports it
        return None


def _unknown_options(parsed: list[Any], config_dir: str) -> str | None:
    """A multirun over options of a config group (``model=seed000,seed01``): each option must exist."""
    from hydra.core.override_parser.types import ChoiceSweep

    for override in parsed:
        group = Path(config_dir, override.get_key_element().lstrip("+~"))
        value = override.value() if override.is_sweep_override() else None
        if not isinstance(value, ChoiceSweep) or not group.is_dir():
            continue
        for option in value.list:
            if isinstance(option, str) and not (group / f"{option}.yaml").is_file():
                return _unknown_option(config_dir, group.name, option)
    return None


def _accepts(node: Any) -> list[str]:
    """The keys a config node takes: its own, and for archfuse's classes (model, data, ensemble) every
    parameter of the class it builds (a user's own class may take options its YAML does not list)."""
    keys = [str(k) for k in node.keys()] if isinstance(node, DictConfig) else []
    target = str(node.get("_target_", "")) if isinstance(node, DictConfig) else ""
    if target.startswith("archfuse."):
        from hydra.utils import get_object

        from archfuse.models import DATA_SHAPE_ARGS
        from archfuse.options import accepted_parameters

        try:
            params, _ = accepted_parameters(get_object(target))
            keys += [n for n in params if n not in keys and n not in DATA_SHAPE_ARGS]
        except Exception:  # the run reports a target that does not import
            pass
    return sorted(k for k in keys if not (k.startswith("_") and k.endswith("_")))


def _unknown_key(key: str, config_name: str, overrides: list[str]) -> str:
    """``KEY: unknown key; PARENT accepts: ...``, read from the config composed without that override."""
    from hydra import compose

    parent, _, _ = key.rpartition(".")
    rest = [o for o in overrides if o.lstrip("+~").split("=")[0] != key]
    try:
        config = compose(config_name, overrides=rest, return_hydra_config=parent.startswith("hydra"))
        node = OmegaConf.select(config, parent) if parent else config
    except Exception:
        node = None
    keys = _accepts(node)
    where = parent or "the config"
    if not keys and isinstance(node, DictConfig) and "_target_" in node:
        return f"{key}: unknown key; {where} has no options to set"
    if not keys:
        return f"{key}: not in the config ({where} is empty here); add it with +{key}=VALUE"
    return (f"{key}: unknown key; {where} accepts: {', '.join(keys)} (check the spelling; +{key}=VALUE adds a "
            f"key of your own)")


def _message(err: Exception, config_dir: str, config_name: str, overrides: list[str]) -> str | None:
    from hydra.errors import MissingConfigException

    if isinstance(err, MissingConfigException) and err.missing_cfg_file and "/" in err.missing_cfg_file:
        group, _, option = err.missing_cfg_file.rpartition("/")
        return _unknown_option(config_dir, group, option, list(err.options or []))
    text = str(err)
    if text.startswith("Could not override '"):
        return _unknown_key(text.split("'")[1], config_name, overrides)
    if text.startswith("Could not append to config. An item is already at '"):
        key = text.split("'")[1]
        return f"{key}: already in the config; set it without the + ({key}=VALUE)"
    return None  # anything else is Hydra's to report, as it would


def _unwritable(config: DictConfig, key: str) -> str | None:
    """Why the folder at ``key`` cannot hold the run's files, or None (also when it is not known yet)."""
    from archfuse.checks import check_writable_dir
    from archfuse.errors import ConfigError

    try:
        folder = OmegaConf.select(config, key, throw_on_missing=True)
    except Exception:  # an interpolation only the run can resolve: the run reports it
        return None
    if not isinstance(folder, str) or not folder:
        return None
    try:
        check_writable_dir(key, folder, f"set {key} to a folder you can write to ({key}=DIR)")
    except ConfigError as err:
        return str(err)
    return None


def check_command_line(argv: list[str], config_dir: str, config_name: str,
                       output_key: str | None = None) -> str | None:
    """Why the overrides in ``argv`` cannot compose (one line naming the key), or None. ``output_key``:
    the config key of the folder the command creates its run directories in, which must be writable."""
    if any(a.split("=")[0] in HYDRA_FLAGS for a in argv):
        return None
    parsed = _parse(argv)
    if parsed is None:
        return None
    bad = _unknown_options(parsed, config_dir)
    if bad:
        return bad
    overrides = [_first_value(o) if o.is_sweep_override() else o.input_line for o in parsed]
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import CompactHydraException

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir, version_base="1.3"):
            try:
                config = compose(config_name, overrides=overrides, return_hydra_config=True)
            except CompactHydraException as err:
                return _message(err, config_dir, config_name, overrides)
            except Exception:  # anything else (an interpolation resolved later, ...) is the run's to report
                return None
            return _unwritable(config, output_key) if output_key else None
    finally:
        GlobalHydra.instance().clear()


def refuse_bad_command_line(prog: str, config_dir: str, config_name: str) -> None:
    """What archfuse-eval, -export and -predict do first: ``KEY=~/PATH`` expanded in sys.argv, then, where
    the command line cannot compose, one line naming the key and exit code 2."""
    sys.argv[1:] = expand_home(sys.argv[1:])
    bad = check_command_line(sys.argv[1:], config_dir, config_name)
    if bad:
        print(f"{prog}: error: {bad}", file=sys.stderr)
        sys.exit(2)
