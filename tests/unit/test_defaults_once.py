"""Every option default is written once, in the YAML under conf/: a parameter that a conf/ node of an
archfuse ``_target_`` sets has no default in the target's signature (the models' way: keyword-only
parameters without defaults). Nodes nested inside a file count too (a recipe chain's steps)."""

import dataclasses
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hydra.utils import get_method

from archfuse.config_dir import config_dir
from archfuse.errors import ConfigError
from archfuse.sweep.settings import Settings, read_settings

CONF = Path(config_dir())
YAML_FILES = sorted(CONF.rglob("*.yaml"))


def target_nodes(tree: Any, prefix: str, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(key path, node) of every mapping in ``tree`` whose ``_target_`` starts with ``prefix``."""
    if isinstance(tree, dict):
        if str(tree.get("_target_", "")).startswith(prefix):
            yield path, tree
        for key, value in tree.items():
            yield from target_nodes(value, prefix, f"{path}.{key}" if path else str(key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from target_nodes(value, prefix, f"{path}[{i}]")


def resolve(target: str) -> Callable[..., Any]:
    """The class or function a ``_target_`` names (get_method accepts both: a class is callable)."""
    return get_method(target)


def own_defaults(target: Callable[..., Any]) -> dict[str, Any]:
    """Parameters with a default in the signatures of ``target``'s own package (a class's ``__init__``,
    following ``**kwargs`` up its bases); a third-party base's defaults (Lightning's) are not ours."""
    package = target.__module__.split(".")[0]
    chain = [c.__init__ for c in target.__mro__ if "__init__" in vars(c)] if inspect.isclass(target) else [target]
    found: dict[str, Any] = {}
    for function in chain:
        module = getattr(function, "__module__", None) or ""
        if module != package and not module.startswith(f"{package}."):
            break
        params = inspect.signature(function).parameters
        for name, param in params.items():
            if param.default is not param.empty:
                found.setdefault(name, param.default)
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            break
    return found


def written_twice(yaml_path: Path, prefix: str = "archfuse.") -> list[str]:
    """One line per parameter of ``yaml_path`` whose value is also a default in the code."""
    tree = yaml.safe_load(yaml_path.read_text())
    shown = f"conf/{yaml_path.relative_to(CONF)}" if yaml_path.is_relative_to(CONF) else str(yaml_path)
    problems = []
    for key, node in target_nodes(tree, prefix):
        defaults = own_defaults(resolve(node["_target_"]))
        for name in node:
            if name in defaults and not (name.startswith("_") and name.endswith("_")):
                where = f"{key}.{name}" if key else name
                problems.append(f"{shown}: {where} = {node[name]!r}, but {node['_target_']} also defaults it "
                                f"to {defaults[name]!r}")
    return problems


@pytest.mark.parametrize("yaml_path", YAML_FILES, ids=[str(p.relative_to(CONF)) for p in YAML_FILES])
def test_no_default_is_written_twice(yaml_path):
    problems = written_twice(yaml_path)
    assert not problems, "defaults written both in the YAML and in the code:\n" + "\n".join(problems)


class _Base:
    def __init__(self, *, a: int, b: int = 2):
        self.a, self.b = a, b


class _Written(_Base):
    def __init__(self, *, c: int = 1, **kwargs: Any):
        super().__init__(**kwargs)


def _factory(*, d: float, e: float = 0.5) -> None:
    pass


def test_a_default_written_twice_is_found(tmp_path):
    path = tmp_path / "fake.yaml"
    path.write_text(yaml.safe_dump({
        "_target_": f"{__name__}._Written", "a": 0, "b": 3, "c": 1,
        "steps": {"one": {"_target_": f"{__name__}._factory", "_partial_": True, "d": 1.0, "e": 0.5}},
        "kept": {"_target_": f"{__name__}._Base", "a": 1}}))
    problems = written_twice(path, prefix=__name__)
    assert len(problems) == 3, problems
    assert problems[0].endswith(f"b = 3, but {__name__}._Written also defaults it to 2")
    assert problems[1].endswith(f"c = 1, but {__name__}._Written also defaults it to 1")
    assert problems[2].endswith(f"steps.one.e = 0.5, but {__name__}._factory also defaults it to 0.5")


def test_every_conf_target_resolves():
    targets = [(p, node["_target_"]) for p in YAML_FILES
               for _, node in target_nodes(yaml.safe_load(p.read_text()), "archfuse.")]
    assert len(targets) > 20
    for path, target in targets:
        assert callable(resolve(target)), (path, target)


# -- the sweeper: its settings are a dataclass, its YAML is conf/hydra/sweeper/optuna.yaml --------------
SWEEPER_YAML = CONF / "hydra" / "sweeper" / "optuna.yaml"


def test_sweeper_settings_have_no_defaults_and_match_the_yaml():
    fields = dataclasses.fields(Settings)
    written = [f.name for f in fields if f.default is not dataclasses.MISSING
               or f.default_factory is not dataclasses.MISSING]
    assert not written, f"Settings fields with a default besides the YAML: {written}"
    values = {k: v for k, v in yaml.safe_load(SWEEPER_YAML.read_text()).items() if k != "_target_"}
    assert [f.name for f in fields] == list(values)
    assert dataclasses.asdict(read_settings({})) == values  # a partial dict is completed from the YAML


def test_sweeper_unknown_key_lists_every_key():
    with pytest.raises(ConfigError) as err:
        read_settings({"n_trial": 5})
    keys = [k for k in yaml.safe_load(SWEEPER_YAML.read_text()) if k != "_target_"]
    assert "rerun_repeats" in keys
    assert str(err.value) == f"hydra.sweeper.n_trial: unknown key; the sweeper accepts: {', '.join(keys)}"
