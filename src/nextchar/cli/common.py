"""What every command shares: the one-line usage error, flags derived from config dataclass
fields (help text and flag names in the field metadata, choices from Literal types), and how
tokens are shown in tables. Nothing here imports torch."""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
import typing
from typing import Any, NoReturn

from nextchar.core.config import DEVICE_CHOICES
from nextchar.core.options import did_you_mean, flag_name, mentions

MODEL_ARG_HELP = (
    "checkpoint or run directory, a file from `nextchar export` (.onnx), or a GPT-2 "
    "(name such as gpt2, or directory)"
)

Sub = argparse._SubParsersAction


def other_rank() -> bool:
    """A process other than rank 0 under a launcher (torchrun, `train --processes`): every
    process meets the same bad input, and rank 0 alone says so."""
    return os.environ.get("RANK", "0") != "0"


# A launcher stops every process as soon as one ends with an error, so the others wait this
# long before ending with one: rank 0 has said its line (or saved and summed up) by then.
RANK0_FIRST = 0.5


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (plus where to look), not a usage dump, and a
    misspelt flag gets a "did you mean" from the flags of the command it was given to."""

    def error(self, message: str) -> NoReturn:
        if other_rank():
            time.sleep(RANK0_FIRST)
            self.exit(2)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args: Any = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = self._command_parser(parsed)
            flags = [f for f in command._option_string_actions if f.startswith("--")]
            hint = did_you_mean(extras[0], flags) if extras[0].startswith("-") else ""
            command.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
        return parsed

    def _command_parser(self, parsed: argparse.Namespace) -> argparse.ArgumentParser:
        """The (sub)command's own parser: `nextchar experiment long-range` is two deep."""
        parser: argparse.ArgumentParser = self
        while True:
            subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
            chosen = subs and getattr(parsed, subs[0].dest or "", None)
            if not chosen:
                return parser
            parser = subs[0].choices[chosen]


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
    return mentions(text, command_line=True)  # --help is read on the command line


def _choices(hint: Any) -> tuple[str, ...] | None:
    """The choices of a Literal annotation, also inside `X | None`."""
    if typing.get_origin(hint) is typing.Literal:
        return typing.get_args(hint)
    inner = [a for a in typing.get_args(hint) if typing.get_origin(a) is typing.Literal]
    return typing.get_args(inner[0]) if inner else None


def _base_type(hint: Any) -> type:
    """int, float or str from an annotation such as `int | None`."""
    if _choices(hint):
        return str
    return next((t for t in (int, float, str) if t == hint or t in typing.get_args(hint)), str)


def _list_of(item: type) -> Any:
    def parse(text: str) -> tuple[Any, ...]:
        try:
            return tuple(item(v.strip()) for v in text.split(",") if v.strip())
        except ValueError:
            kind = {int: "integers", float: "numbers"}.get(item, "names")
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {kind}, got {text!r}"
            ) from None

    return parse


def _metavar(hint: Any, meta: Any) -> str:
    """One placeholder style: N for counts, NUM for numbers, TIME for durations, TEXT else."""
    if meta.get("metavar"):
        return meta["metavar"]
    if meta.get("parse") == "duration":
        return "TIME"
    return {int: "N", float: "NUM"}.get(_base_type(hint), "TEXT")


def _default_shown(default: Any, hint: Any) -> str:
    if default is None:
        return ""
    if hint is bool:
        return " (default: on)" if default else " (default: off)"
    if isinstance(default, tuple):
        return f" (default: {','.join(map(str, default))})"
    return f" (default: {default})"


def add_fields(
    p: argparse.ArgumentParser,
    cls: type,
    only: tuple[str, ...] | None = None,
    defaults: dict[str, Any] | None = None,
) -> None:
    """One flag per option field of `cls` (a field with help), or of the `only` ones; a flag
    the parser has already (a field two configs share) is not added twice. Flags left out on
    the command line are absent from the namespace, so the dataclass (or a preset) supplies
    the default; `defaults` only changes what --help shows. The help shows the default unless
    it is None (the help says what none means)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        meta, hint = f.metadata, hints[f.name]
        flag = flag_name(f.name)
        if "help" not in meta or (only is not None and f.name not in only):
            continue
        if flag in p._option_string_actions:
            continue
        default = (defaults or {}).get(f.name, f.default)
        text = help_text(meta["help"]) + _default_shown(default, hint)
        if hint is bool and "negative" in meta:  # --batch-first / --seq-first
            pair = p.add_mutually_exclusive_group()
            unset = argparse.SUPPRESS
            pair.add_argument(flag, dest=f.name, action="store_true", default=unset, help=text)
            pair.add_argument(flag_name(meta["negative"]), dest=f.name, action="store_false",
                              default=unset, help=f"the opposite of {flag}")  # fmt: skip
            continue
        if hint is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction,
                           default=argparse.SUPPRESS, help=text)  # fmt: skip
            continue
        if meta.get("repeat"):  # a tuple of strings, one per use of the flag
            p.add_argument(flag, action="append", dest=f.name, default=argparse.SUPPRESS,
                           help=text, metavar=_metavar(hint, meta))  # fmt: skip
            continue
        if typing.get_origin(hint) is tuple:  # comma-separated: 2,5,10
            item = _base_type(typing.get_args(hint)[0])
            p.add_argument(flag, dest=f.name, type=_list_of(item), default=argparse.SUPPRESS,
                           help=text, metavar="A,B,...")  # fmt: skip
            continue
        choices = _choices(hint)
        p.add_argument(
            flag,
            *map(flag_name, meta.get("aliases", ())),
            dest=f.name,
            type=parse_duration if meta.get("parse") == "duration" else _base_type(hint),
            choices=choices,
            default=argparse.SUPPRESS,
            help=text,
            metavar=None if choices else _metavar(hint, meta),
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
