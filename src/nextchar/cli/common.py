"""What every command shares: the one-line usage error, flags derived from config dataclass
fields (help text and flag names in the field metadata, choices from Literal types), and how
tokens are shown in tables. Nothing here imports torch."""

from __future__ import annotations

import argparse
import dataclasses
import re
import typing
from typing import Any, NoReturn

from nextchar.core.config import DEVICE_CHOICES
from nextchar.core.options import flag_name

MODEL_ARG_HELP = (
    "checkpoint or run directory, a file from `nextchar export` (.onnx), or a GPT-2 "
    "(name such as gpt2, or directory)"
)

Sub = argparse._SubParsersAction


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (plus where to look), not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parse_duration(text: str) -> float:
    """'480', '90s', '8m', '1.5h' -> seconds."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a duration: {text!r} (try 480, 90s, 8m, 1h)"
        ) from None


def help_text(text: str) -> str:
    """A field's help as the command line shows it: `max_steps` becomes --max-steps."""
    return re.sub(r"`([a-z][a-z0-9_]*)`", lambda m: flag_name(m.group(1)), text)


def _base_type(hint: Any) -> type:
    """int, float or str from an annotation such as `int | None`."""
    if typing.get_origin(hint) is typing.Literal:
        return str
    return next((t for t in (int, float, str) if t == hint or t in typing.get_args(hint)), str)


def add_fields(
    p: argparse.ArgumentParser,
    cls: type,
    only: tuple[str, ...] | None = None,
    defaults: dict[str, Any] | None = None,
) -> None:
    """One flag per field of `cls` that has help text in its metadata (or the `only` ones).
    Flags left out on the command line are absent from the namespace, so the dataclass (or a
    preset) supplies the default; `defaults` only changes what --help shows."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if "help" not in meta or (only is not None and f.name not in only):
            continue
        default = (defaults or {}).get(f.name, f.default)
        flag = flag_name(f.name)
        hint = hints[f.name]
        if hint is bool:
            shown = "on" if default else "off"
            p.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=f"{help_text(meta['help'])} (default: {shown})",
            )
            continue
        choices = typing.get_args(hint) if typing.get_origin(hint) is typing.Literal else None
        p.add_argument(
            flag,
            *map(flag_name, meta.get("aliases", ())),
            dest=f.name,
            type=parse_duration if meta.get("parse") == "duration" else _base_type(hint),
            choices=choices,
            default=argparse.SUPPRESS,
            help=f"{help_text(meta['help'])} (default: {default})",
            metavar=meta.get("metavar") or (None if choices else f.name.split("_")[-1].upper()),
        )


def given(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields of `cls` given as flags on the command line (fields with help text)."""
    names = {f.name for f in dataclasses.fields(cls) if "help" in f.metadata}
    return {k: v for k, v in vars(args).items() if k in names}


def add_device(p: argparse.ArgumentParser, default: str | None = "auto") -> None:
    p.add_argument(
        "--device",
        choices=DEVICE_CHOICES,
        default=default,
        help="where to run: auto = cuda > mps > cpu (default: auto)",
    )
