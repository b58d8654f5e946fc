"""Validation, once, at the edge: a config dataclass checks its option fields on construction
(types, choices, finiteness, bounds from `opt`), whoever built it -- the command line, a
notebook's keywords, the server -- and JSON (a hand-edited config.json included) is checked
against the fields' annotations before a dataclass is built from it."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Literal, TypeVar, Union

from nextchar.core.errors import NextcharError
from nextchar.core.options import flag, mentions

T = TypeVar("T")


# torch.Generator.manual_seed takes 64 bits; seeds are kept to the non-negative half so that
# seeds derived from them (seed + rank, seed + step) stay in range too.
SEED_MAX = 2**63 - 1


def check_fields(obj: Any) -> None:
    """Validate every option field of a config dataclass from its annotation and metadata:
    the type (a keyword from Python is not parsed: `epochs="5"` and `epochs=True` are
    refused), choices, finiteness, and the bounds given to `opt` (low, high, above). The
    message names the option as its caller wrote it (core/options.flag)."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value, hint, meta = getattr(obj, f.name), hints[f.name], f.metadata
        if isinstance(value, list) and typing.get_origin(hint) is tuple:
            value = tuple(value)
            object.__setattr__(obj, f.name, value)
        if not _fits(value, hint):
            raise NextcharError(f"{flag(f.name)} must be {_type_name(hint)}, got {_shown(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise NextcharError(f"{flag(f.name)} must be a finite number, got {value}")
        if value is None or isinstance(value, (bool, str, tuple)):
            continue
        low, high = meta.get("low"), meta.get("high")
        above, below = meta.get("above"), meta.get("below")
        broken = (
            (
                low is not None
                and high is not None
                and not low <= value <= high
                and f"in {low}..{high}"
            )
            or (low is not None and value < low and f">= {low}")
            or (high is not None and value > high and f"<= {high:,}")
            or (above is not None and not value > above and f"> {above}")
            or (below is not None and not value < below and f"< {below}")
        )
        if broken:
            advice = "; " + mentions(meta["hint"]) if meta.get("hint") else ""
            raise NextcharError(f"{flag(f.name)} must be {broken}, got {value}{advice}")


def _shown(value: Any) -> str:
    return repr(value) if len(repr(value)) < 60 else type(value).__name__


def _fits(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a field's annotation (int, float, str, bool, Literal, X | None,
    tuple[str, ...]). bool is not an int here, and a float never stands for an int."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(_fits(value, arg) for arg in typing.get_args(hint))
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return isinstance(value, (list, tuple)) and all(_fits(v, item) for v in value)
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
            raise NextcharError(
                f"{cls.__name__}.{name} must be {_type_name(hints[name])}, got {_shown(value)}"
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
        return f"a list of {_type_name(typing.get_args(hint)[0]).removeprefix('a ')}s"
    return {
        type(None): "null",
        bool: "true or false",
        int: "an integer",
        float: "a number",
        str: "a string",
    }.get(hint, getattr(hint, "__name__", str(hint)))
