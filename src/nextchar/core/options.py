"""Options: a config field is also a command-line flag and a notebook keyword. Its help,
flag name and bounds live in the field (`opt`), and `flag(name)` is the one way library code
names an option in a message -- as `--max-steps` when the command line runs it, as
`max_steps` when Python code called it."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import difflib
import re
from collections.abc import Iterable, Iterator
from typing import Any

# A field whose flag is not its name with dashes: name -> flag.
RENAMED = {"kind": "--model", "bpe_vocab": "--vocab-size"}

_ON_COMMAND_LINE = contextvars.ContextVar("nextchar_on_command_line", default=False)


def opt(default: Any, help: str | None = None, **meta: Any) -> Any:
    """An option field: with `help` it is also a command-line flag (and a keyword of the
    notebook API); `meta` may give `aliases`, `metavar`, `parse` ("duration"), `repeat` (a
    flag given several times), `negative` (the name of a bool's opposite flag), the bounds
    that validation enforces -- `low`, `high` (inclusive), `above`, `below` (exclusive) --
    and a `hint` added to a bound's refusal. In help and hints, `name` in backticks is an
    option, written as the reader will see it (`mentions`)."""
    info = {**meta, **({"help": help} if help is not None else {})}
    return dataclasses.field(default=default, metadata=info)


def flag_name(name: str) -> str:
    """The command-line flag of option `name`: max_steps -> --max-steps."""
    return RENAMED.get(name, "--" + name.replace("_", "-"))


_NO_VALUE = object()


def keyword(name: str) -> str:
    """The Python keyword of option `name`: the flag's name with underscores (kind -> model)."""
    return flag_name(name)[2:].replace("-", "_")


def field_of(word: str) -> str:
    """The field a keyword or flag name stands for (model -> kind); other names unchanged."""
    return {keyword(n): n for n in RENAMED}.get(word.lstrip("-").replace("-", "_"), word)


def flag(name: str, value: Any = _NO_VALUE, command_line: bool = False) -> str:
    """How a message names option `name` (with `value`, if given) to the person who gave it:
    `--resume runs/x` on the command line (or always, with `command_line`: a line to type),
    `resume='runs/x'` to Python code."""
    if command_line or _ON_COMMAND_LINE.get():
        return flag_name(name) + ("" if value is _NO_VALUE else f" {value}")
    word = keyword(name)
    if value is _NO_VALUE:
        return word
    return f"{word}={value}" if isinstance(value, (int, float)) else f"{word}={str(value)!r}"


def mentions(text: str, command_line: bool = False) -> str:
    """Text with every backticked option name (`max_steps`) written as `flag` writes it."""
    return re.sub(
        r"`([a-z][a-z0-9_]*)`", lambda m: flag(m.group(1), command_line=command_line), text
    )


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """' (did you mean --max-steps?)' for a misspelt name, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


@contextlib.contextmanager
def on_command_line() -> Iterator[None]:
    """Within this block messages name flags (the CLI runs every command inside it)."""
    token = _ON_COMMAND_LINE.set(True)
    try:
        yield
    finally:
        _ON_COMMAND_LINE.reset(token)
