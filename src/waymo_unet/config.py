"""Configuration dataclasses built from Kedro parameters, refusing what they cannot use.

A misspelt key or a value of the wrong type (``learning_rate=abc`` on the command line)
is named, with its parameters file, before any work starts, instead of surfacing later
as a ``TypeError`` deep inside a run.
"""

from __future__ import annotations

import math
import numbers
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, fields
from difflib import get_close_matches
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

Config = TypeVar("Config")


def config_from_params(
    cls: type[Config], params: Mapping[str, Any], section: str, parameters_file: str
) -> Config:
    """``cls(**params)`` once every key is a field of ``cls`` and every value fits its type.

    ``section`` is the parameters' dotted name (``training.train``) and ``parameters_file``
    the file under conf/base that holds them, both quoted in the error.
    """
    return checked_config(cls, params, section, f"conf/base/{parameters_file}")


def checked_config(cls: type[Config], values: Mapping[str, Any], name: str, source: str) -> Config:
    """``cls(**values)`` once every key is a field and every value fits its type.

    A ValueError names the key (``name.key``), the value and ``source``, where the values
    come from: a parameters file, or a checkpoint.
    """
    if not isinstance(values, Mapping):
        raise ValueError(f"{name} must be a mapping, got {values!r} (see {source})")
    known = [f.name for f in fields(cls) if f.init]
    unknown = [key for key in values if key not in known]
    if unknown:
        listed = ", ".join(f"{name}.{key}={values[key]!r}" for key in unknown)
        close = [f"{name}.{m}" for key in unknown for m in get_close_matches(key, known, n=1)]
        guess = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"unknown key{'s' * (len(unknown) > 1)} {listed}{guess} "
            f"(see {source}; known: {', '.join(known)})"
        )
    missing = [f.name for f in fields(cls) if f.init and _required(f) and f.name not in values]
    if missing:
        listed = ", ".join(f"{name}.{key}" for key in missing)
        raise ValueError(f"missing key {listed} (see {source})")
    hints = get_type_hints(cls)
    for key, value in values.items():
        if not value_fits(value, hints[key]):
            raise ValueError(
                f"{name}.{key} must be {describe_type(hints[key])}, got {value!r} (see {source})"
            )
    try:
        return cls(**values)
    except ValueError as error:
        raise ValueError(f"{name} (see {source}): {error}") from error


def _required(field: Any) -> bool:
    return field.default is MISSING and field.default_factory is MISSING


def value_fits(value: Any, hint: Any) -> bool:
    """Whether ``value`` is of type ``hint``: an int is a float, a bool is not an int.

    NumPy integers and floats count as ints and floats; NaN and infinity are no number.
    """
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
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if hint is float:
        return (
            isinstance(value, numbers.Real)
            and not isinstance(value, bool)
            and math.isfinite(float(value))
        )
    if origin in (list, tuple, Sequence):
        element = get_args(hint)[0] if get_args(hint) else Any
        return isinstance(value, list | tuple) and all(value_fits(v, element) for v in value)
    if origin in (dict, Mapping):
        return isinstance(value, Mapping)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # a type this check does not describe: left to the class


def describe_type(hint: Any) -> str:
    """``float | None`` -> 'a number or null', as a YAML user reads it."""
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(option) for option in get_args(hint))
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if hint is type(None):
        return "null"
    if hint in names:
        return names[hint]
    if origin in (list, tuple, Sequence):
        return f"a list of ({describe_type(get_args(hint)[0])})" if get_args(hint) else "a list"
    if origin in (dict, Mapping):
        return "a mapping"
    return f"{getattr(hint, '__name__', hint)} settings"
