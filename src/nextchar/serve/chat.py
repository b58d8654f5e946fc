"""`nextchar chat`: the terminal version of the web page. Type a prefix; see the most likely
next tokens and a sampled continuation. Lines starting with ':' change the settings."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import Any

from nextchar.core.commands import SampleConfig
from nextchar.core.errors import NextcharError
from nextchar.core.options import flag
from nextchar.display.terminal import prediction_lines, shown
from nextchar.inference.generate import predict_next, sample_texts
from nextchar.serve.limits import MAX_TEXT
from nextchar.text.tokenizers import Tokenizer

_CHAT_SETTINGS = {"temperature": float, "top_k": int, "length": int, "seed": int}
_CHAT_HELP = (
    "settings: :temperature X, :top-k N|off, :length N, :seed N, :greedy (toggles), "
    ":help, :quit; a typed \\n is a newline"
)


def chat_setting(config: SampleConfig, line: str) -> SampleConfig:
    """Apply one ':name value' line to the sampling settings (a new, validated config)."""
    name, _, value = line[1:].strip().partition(" ")
    name = name.replace("-", "_")
    if name == "greedy":
        return dataclasses.replace(config, greedy=not config.greedy)
    if name not in _CHAT_SETTINGS or not value:
        raise NextcharError(f"unknown setting {line!r}; {_CHAT_HELP}")
    try:
        parsed = None if value == "off" else _CHAT_SETTINGS[name](value)
    except ValueError:
        raise NextcharError(f"{value!r} is not a number for :{name}") from None
    return dataclasses.replace(config, **{name: parsed})  # validated by SampleConfig


def _line_reader(model: Any, tokenizer: Tokenizer, top: int) -> Callable[[], str]:
    """input() for pipes; on a terminal with prompt_toolkit, a prompt whose bottom bar shows
    the most likely next tokens while you type, updated on every keystroke."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return lambda: input("> ")
    try:
        from prompt_toolkit import PromptSession
    except ImportError:
        return lambda: input("> ")
    session: Any = PromptSession()
    cached: dict[str, str] = {}  # the bar for the text it was computed for

    def toolbar() -> str:
        text = session.default_buffer.text.replace("\\n", "\n")
        if not text or text.startswith(":"):
            return " type a prefix: the most likely next tokens show here as you type"
        if text not in cached:
            try:
                prediction = predict_next(model, tokenizer, text, top)
                bar = "   ".join(f"{shown(t)} {p:.0%}" for t, p in prediction.candidates)
                line = f" next: {bar}   ({prediction.entropy_bits:.1f} bits)"
            except NextcharError as exc:
                line = f" {exc}"
            cached.clear()
            cached[text] = line
        return cached[text]

    return lambda: session.prompt("> ", bottom_toolbar=toolbar)


def chat(load: Callable[[], tuple[Any, Tokenizer]], config: SampleConfig, top: int) -> None:
    """The chat loop until ':quit' or end of input. `load` is called once the settings are
    known to be valid, so a bad flag is one error before any model is read."""
    if top < 1:
        raise NextcharError(f"{flag('top')} must be >= 1 (next tokens shown), got {top}")
    model, tokenizer = load()
    tty = sys.stdout.isatty()
    dim, bold, reset = ("\033[2m", "\033[1m", "\033[0m") if tty else ("", "", "")
    print(f"{model.describe()}: type a prefix (':help' for settings; ':quit' or Ctrl-D ends)")
    read_line = _line_reader(model, tokenizer, top)
    while True:
        try:
            line = read_line()
        except EOFError:
            print()
            return
        if line.strip() in (":quit", ":q", ":exit"):
            return
        if line.strip() in (":help", ":h", ":?"):
            print(_CHAT_HELP)
            continue
        try:
            if len(line) > MAX_TEXT:  # the server's limit: a pasted book would take minutes
                raise NextcharError(
                    f"the line has {len(line):,} characters; chat reads at most {MAX_TEXT:,} "
                    "(as the web page does): give the end of the text"
                )
            if line.startswith(":"):
                config = chat_setting(config, line)
                print(
                    f"{dim}temperature {config.temperature}, top-k {config.top_k or 'off'}, "
                    f"length {config.length}, seed {config.seed}, greedy {config.greedy}{reset}"
                )
                continue
            text = line.replace("\\n", "\n")  # a typed \n is a newline
            if not text:
                continue
            prediction = predict_next(model, tokenizer, text, top)
            print("\n".join(prediction_lines(prediction)))
            print(f"{dim}{text}{reset}{bold}", end="", flush=True)
            for _, piece in sample_texts(model, tokenizer, text, config):
                print(piece, end="", flush=True)
            print(reset)
        except NextcharError as exc:
            print(f"{reset}error: {exc}")
