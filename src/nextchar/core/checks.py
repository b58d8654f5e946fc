"""Checks shared by the config dataclasses: choices from Literal types, ranges, seeds,
finiteness, and JSON values (a hand-edited config.json included) checked against the fields'
annotations before a dataclass is built from them."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Literal, TypeVar, Union

from nextchar.core.errors import NextcharError
from nextchar.core.options import flag

T = TypeVar("T")


def check_choices(obj: Any) -> None:
    """Refuse a value outside its field's Literal type, naming the flag and the choices."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        hint, value = hints[f.name], getattr(obj, f.name)
        if typing.get_origin(hint) is Literal:
            one_of(f.name, value, typing.get_args(hint))


def one_of(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise NextcharError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def at_least(name: str, value: int, low: int) -> None:
    if value < low:
        raise NextcharError(f"{name} must be >= {low}, got {value}")


# torch.Generator.manual_seed takes 64 bits; seeds are kept to the non-negative half so that
# seeds derived from them (seed + rank, seed + step) stay in range too.
SEED_MAX = 2**63 - 1


def check_seed(name: str, value: int) -> None:
    if not 0 <= value <= SEED_MAX:
        raise NextcharError(f"{name} must be in 0..{SEED_MAX} (a 63-bit integer), got {value}")


def all_finite(obj: Any) -> None:
    """Refuse NaN and infinity in every float field of a config dataclass: `lr=inf` or
    `grad_clip=nan` would pass every comparison below (or fail none) and train to NaN."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise NextcharError(f"{flag(f.name)} must be a finite number, got {value}")


def _fits(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a field's annotation (int, float, str, bool, Literal, X | None,
    tuple[str, ...]). bool is not an int here, and a float never stands for an int."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(_fits(value, arg) for arg in typing.get_args(hint))
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin is tuple:
        return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, hint)


def from_dict(cls: type[T], data: Any) -> T:
    """Build a config dataclass from JSON data (a hand-edited file included), refusing
    unknown keys and values of the wrong type by name."""
    if not isinstance(data, dict):
        raise NextcharError(f"{cls.__name__} must be a JSON object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise NextcharError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
    hints = typing.get_type_hints(cls)
    for name, value in data.items():
        if not _fits(value, hints[name]):
            shown = repr(value) if len(repr(value)) < 60 else type(value).__name__
            raise NextcharError(
                f"{cls.__name__}.{name} must be {_type_name(hints[name])}, got {shown}"
            )
    try:
        return cls(**data)
    except TypeError as exc:  # a required field is missing
        raise NextcharError(f"incomplete {cls.__name__}: {exc}") from None


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) in (Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in typing.get_args(hint))
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(hint)))
    if typing.get_origin(hint) is tuple:
        return "a list of strings"
    return {
        type(None): "null",
        bool: "true or false",
        int: "an integer",
        float: "a number",
        str: "a string",
    }.get(hint, str(hint))
