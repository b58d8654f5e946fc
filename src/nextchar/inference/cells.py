"""What the hidden units do: the state of every recurrent layer at every position of a text
(LSTM c and h, GRU/RNN h), and which units follow a pattern of the text -- inside quotes, the
position in a line, after a vowel, bracket depth, or any regular expression -- the cell
visualisations of Karpathy, Johnson and Fei-Fei, "Visualizing and Understanding Recurrent
Networks" (2015).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from nextchar.core.errors import NextcharError
from nextchar.inference import regex_worker
from nextchar.models import model_device, require
from nextchar.models.contract import CELL_VIEW
from nextchar.text.tokenizers import Tokenizer


@dataclass(frozen=True)
class Activations:
    tokens: list[str]  # what each position shows (a character, word or token)
    states: dict[str, torch.Tensor]  # name -> [layers, T, units]: h, an LSTM's c, gates
    labels: dict[str, str]  # name -> what it is, as the model describes it

    @property
    def layers(self) -> int:
        return next(iter(self.states.values())).shape[0]

    def values(self, state: str, layer: int) -> torch.Tensor:
        """[T, units] of `state` (h, c, a gate) in `layer` (0 = first)."""
        if state not in self.states:
            raise NextcharError(
                f"this model has no state {state!r}; choose one of {', '.join(self.states)}"
            )
        tensor = self.states[state]
        if not 0 <= layer < tensor.shape[0]:
            raise NextcharError(f"layer must be in 0..{tensor.shape[0] - 1}, got {layer}")
        return tensor[layer]


@torch.no_grad()
def activations(model: Any, tokenizer: Tokenizer, text: str) -> Activations:
    """Every layer's state (and gates, where the cell has them) after each token of the text."""
    require(model, CELL_VIEW, "the cell view")
    ids = tokenizer.encode(text)
    if not ids:
        raise NextcharError("the text is empty")
    model.eval()
    states = model.cell_states(torch.tensor([ids], device=model_device(model)))
    return Activations(
        [tokenizer.token_text(i) for i in ids],
        {name: value.float().cpu() for name, value in states.items()},
        model.state_labels(),
    )


def _inside_quotes(tokens: list[str]) -> list[float]:
    inside, out = False, []
    for token in tokens:
        for ch in token:
            if ch == '"':
                inside = not inside
        out.append(float(inside))
    return out


def _line_position(tokens: list[str]) -> list[float]:
    position, out = 0, []
    for token in tokens:
        position = len(token) - 1 - token.rfind("\n") if "\n" in token else position + len(token)
        out.append(float(position))
    return out


def _after_vowel(tokens: list[str]) -> list[float]:
    return [float(bool(t) and t[-1].lower() in "aeiouy") for t in tokens]


def _bracket_depth(tokens: list[str]) -> list[float]:
    depth, out = 0, []
    for token in tokens:
        for ch in token:
            depth += ch in "([{"
            depth -= ch in ")]}" and depth > 0
        out.append(float(depth))
    return out


PATTERNS: dict[str, tuple[str, Callable[[list[str]], list[float]]]] = {
    "quotes": ('inside "double quotes"', _inside_quotes),
    "line_position": ("characters since the last newline", _line_position),
    "vowel": ("the token ends in a vowel", _after_vowel),
    "brackets": ("bracket nesting depth", _bracket_depth),
}


def pattern_signal(tokens: list[str], pattern: str) -> list[float]:
    """One number per token: a named pattern, or 're:REGEX' (1 where a match covers the
    token's last character). A user's regex runs in a child process with a time and a
    memory limit (regex_worker.py): a pattern that backtracks without end, or whose compiling
    alone takes gigabytes, is stopped there and named in one line."""
    if pattern in PATTERNS:
        return PATTERNS[pattern][1](tokens)
    if not pattern.startswith("re:"):
        names = ", ".join(PATTERNS)
        raise NextcharError(f"unknown pattern {pattern!r}; use one of {names}, or re:REGEX")
    text, source = "".join(tokens), pattern[3:]
    outcome, found = regex_worker.spans(source, text)
    if outcome == "bad":
        raise NextcharError(f"bad regular expression {source!r}: {found}")
    if outcome == "time":
        raise NextcharError(
            f"the regular expression {source!r} took longer than {regex_worker.SECONDS:g} s "
            "on this text and was stopped; simplify it (nested repeats such as (a|aa)+ "
            "backtrack without end)"
        )
    if outcome == "memory":
        raise NextcharError(
            f"the regular expression {source!r} needs more than "
            f"{regex_worker.MEMORY // 2**20} MB to compile and match and was stopped; simplify "
            "it (nested counted repeats such as (?:a{1000}){1000} multiply)"
        )
    covered = [0.0] * len(text)
    for start, end in found:
        for i in range(start, end):
            covered[i] = 1.0
    ends, position = [], 0
    for token in tokens:
        position += len(token)
        ends.append(covered[position - 1] if token else 0.0)
    return ends


def correlate(values: torch.Tensor, signal: list[float], top: int = 10) -> list[tuple[int, float]]:
    """(unit, Pearson r) of the units whose activation [T, units] follows `signal` [T] most
    closely, strongest |r| first. A constant signal or unit has r = 0."""
    if values.shape[0] != len(signal):
        raise ValueError("one signal value per position is needed")
    x = values.double() - values.double().mean(0)
    y = torch.tensor(signal, dtype=torch.float64)
    y = y - y.mean()
    denominator = (x.pow(2).sum(0) * y.pow(2).sum()).sqrt()
    r = torch.where(denominator > 0, (x * y[:, None]).sum(0) / denominator, 0.0)
    order = r.abs().argsort(descending=True)[:top]
    return [(int(u), float(r[u])) for u in order]
