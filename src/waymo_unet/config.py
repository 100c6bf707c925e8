"""Configuration dataclasses built from Kedro parameters, refusing what they cannot use.

A misspelt key or a value of the wrong type (``learning_rate=abc`` on the command line)
is named, with its parameters file, before any work starts, instead of surfacing later
as a ``TypeError`` deep inside a run.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

Config = TypeVar("Config")


def config_from_params(
    cls: type[Config], params: Mapping[str, Any], section: str, parameters_file: str
) -> Config:
    """``cls(**params)`` once every key is a field of ``cls`` and every value fits its type.

    ``section`` is the parameters' dotted name (``training.train``) and ``parameters_file``
    the file under conf/base that holds them, both quoted in the error.
    """
    where = f"conf/base/{parameters_file}"
    if not isinstance(params, Mapping):
        raise ValueError(f"parameters {section} must be a mapping, got {params!r} (see {where})")
    names = [f.name for f in fields(cls) if f.init]
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {', '.join(f'{section}.{k}' for k in unknown)} "
            f"(see {where}; known: {', '.join(names)})"
        )
    hints = get_type_hints(cls)
    for name, value in params.items():
        if not value_fits(value, hints[name]):
            raise ValueError(
                f"parameter {section}.{name} must be {describe_type(hints[name])}, "
                f"got {value!r} (see {where})"
            )
    try:
        return cls(**params)
    except ValueError as error:
        raise ValueError(f"parameters {section} (see {where}): {error}") from error


def value_fits(value: Any, hint: Any) -> bool:
    """Whether ``value`` is of type ``hint``: an int is a float, a bool is not an int."""
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(value_fits(value, option) for option in get_args(hint))
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(float(value))
        )
    if origin in (list, tuple, Sequence):
        element = get_args(hint)[0] if get_args(hint) else Any
        return isinstance(value, list | tuple) and all(value_fits(v, element) for v in value)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # a type this check does not describe: left to the class


def describe_type(hint: Any) -> str:
    """``float | None`` -> 'a number or null', as a YAML user reads it."""
    if get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(describe_type(option) for option in get_args(hint))
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if hint is type(None):
        return "null"
    if hint in names:
        return names[hint]
    if get_origin(hint) in (list, tuple, Sequence):
        return f"a list of ({describe_type(get_args(hint)[0])})" if get_args(hint) else "a list"
    return f"{getattr(hint, '__name__', hint)} settings"
