"""Check a config node against the signature of the class it builds: a misspelt key or a value of the
wrong type fails before anything is built, naming the key. The signature is the schema, so no
option's default or type is written down twice (the YAML holds the values, the code the types)."""

import inspect
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from archfuse.errors import ConfigError

_SIMPLE = (bool, int, float, str)


def accepted_parameters(target: Callable[..., Any]) -> tuple[dict[str, inspect.Parameter], bool]:
    """The keyword parameters ``target`` accepts, following ``**kwargs`` up a class's bases; and
    whether it takes arbitrary keywords in the end (then unknown keys cannot be told apart)."""
    found: dict[str, inspect.Parameter] = {}
    chain = [c.__init__ for c in target.__mro__ if "__init__" in vars(c)] if inspect.isclass(target) else [target]
    for function in chain:
        try:
            params = inspect.signature(function).parameters
        except (TypeError, ValueError):
            return found, True
        forwards = False
        for name, param in params.items():
            if name == "self" or param.kind == param.VAR_POSITIONAL:
                continue
            if param.kind == param.VAR_KEYWORD:
                forwards = True
                continue
            found.setdefault(name, param)
        if not forwards:
            return found, False
        if function is object.__init__:
            break
    return found, True


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))


def _matches(value: Any, annotation: Any) -> bool | None:
    """Whether ``value`` fits ``annotation``; None when the annotation is beyond this simple check."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return None
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        results = [_matches(value, arg) for arg in typing.get_args(annotation)]
        return True if any(results) else (None if None in results else False)
    if annotation is type(None):
        return value is None
    if annotation in _SIMPLE:
        if annotation is float:
            return isinstance(value, int | float) and not isinstance(value, bool)
        if annotation is int:
            return isinstance(value, int) and not isinstance(value, bool)
        return isinstance(value, annotation)
    if origin in (list, tuple, Sequence, typing.Sequence) or annotation in (list, tuple):
        if not isinstance(value, list | tuple):
            return False
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        if len(set(args)) == 1:
            inner = [_matches(v, args[0]) for v in value]
            return False if False in inner else True
        return True
    return None


def check_options(node: dict[str, Any], target: Callable[..., Any], key: str,
                  given_by_code: Sequence[str] = ()) -> None:
    """Unknown keys and wrong basic types in ``node`` (the config at ``key``) for ``target``.

    ``given_by_code`` are parameters archfuse passes itself (a model's data shape): they are not options.
    """
    params, open_ended = accepted_parameters(target)
    options = {n: p for n, p in params.items() if n not in given_by_code}
    for name, param in options.items():
        if param.default is inspect.Parameter.empty and name not in node:
            raise ConfigError(f"{key}.{name}", f"missing: {getattr(target, '__name__', target)} needs it; add it to "
                              f"the config (on the command line: +{key}.{name}=VALUE)")
    for name, value in node.items():
        if name.startswith("_") and name.endswith("_"):  # _target_, _partial_
            continue
        if name not in options:
            if open_ended:
                continue
            name_of = getattr(target, "__name__", str(target))
            allowed = ", ".join(options) if options else f"no options ({name_of} has none to set)"
            raise ConfigError(f"{key}.{name}", f"unknown key; {key} accepts: {allowed}")
        annotation = options[name].annotation
        if isinstance(annotation, str):  # postponed annotations
            try:
                annotation = typing.get_type_hints(getattr(target, "__init__", target)).get(name, annotation)
            except Exception:  # an annotation that does not resolve is no reason to stop a run
                continue
        if _matches(value, annotation) is False:
            raise ConfigError(f"{key}.{name}", f"Value '{value}' of type '{type(value).__name__}' could not be "
                              f"converted to {_type_name(annotation)}")
