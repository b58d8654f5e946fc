"""Typed configuration: dataclasses validated on construction, with a JSON round trip so every
run and checkpoint records exactly what built it. No defaults hide anywhere else."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from nextchar.errors import NextcharError

Cell = Literal["rnn", "lstm", "gru"]
InputKind = Literal["onehot", "embedding"]
CELLS: tuple[str, ...] = ("rnn", "lstm", "gru")
INPUT_KINDS: tuple[str, ...] = ("onehot", "embedding")
NONLINEARITIES: tuple[str, ...] = ("tanh", "relu")

T = TypeVar("T")


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise NextcharError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def _at_least(name: str, value: int, low: int) -> None:
    if value < low:
        raise NextcharError(f"{name} must be >= {low}, got {value}")


@dataclass(frozen=True)
class ModelConfig:
    """A recurrent language model: ids -> input vectors -> nn.RNN/LSTM/GRU -> Linear -> logits."""

    vocab_size: int
    cell: Cell = "lstm"
    hidden_size: int = 256
    num_layers: int = 1
    input: InputKind = "embedding"
    # Width of the embedding; None means hidden_size. Unused for one-hot input (width = vocab).
    embedding_dim: int | None = None
    nonlinearity: str = "tanh"  # rnn only
    bias: bool = True
    dropout: float = 0.0  # between layers (torch's `dropout`) and before the output layer
    proj_size: int = 0  # lstm only: project h to this size (0 = off)
    bidirectional: bool = False  # always refused; kept so the refusal can say why

    def __post_init__(self) -> None:
        _at_least("vocab_size", self.vocab_size, 2)
        _choice("cell", self.cell, CELLS)
        _choice("input", self.input, INPUT_KINDS)
        _choice("nonlinearity", self.nonlinearity, NONLINEARITIES)
        _at_least("hidden_size", self.hidden_size, 1)
        _at_least("num_layers", self.num_layers, 1)
        if self.embedding_dim is not None:
            _at_least("embedding_dim", self.embedding_dim, 1)
        if not 0.0 <= self.dropout < 1.0:
            raise NextcharError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.nonlinearity != "tanh" and self.cell != "rnn":
            raise NextcharError(f"nonlinearity applies to the rnn cell only, not {self.cell}")
        if self.proj_size:
            if self.cell != "lstm":
                raise NextcharError(f"proj_size is an LSTM option; the {self.cell} cell has none")
            if not 0 < self.proj_size < self.hidden_size:
                raise NextcharError(
                    f"proj_size must be in 1..hidden_size-1 "
                    f"({self.hidden_size - 1}), got {self.proj_size}"
                )
        if self.bidirectional:
            raise NextcharError(
                "bidirectional recurrent layers cannot predict the next character: the "
                "backward direction reads the character being predicted, so the model would "
                "learn to copy it; use a unidirectional model"
            )

    @property
    def input_size(self) -> int:
        """Features per time step entering the recurrent layer."""
        if self.input == "onehot":
            return self.vocab_size
        return self.embedding_dim or self.hidden_size

    @property
    def output_size(self) -> int:
        """Features per time step leaving the recurrent layer (H_out)."""
        return self.proj_size or self.hidden_size

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return from_dict(cls, data)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build a config dataclass from JSON data, refusing unknown keys by name."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise NextcharError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
    try:
        return cls(**data)
    except TypeError as exc:  # a required field is missing
        raise NextcharError(f"incomplete {cls.__name__}: {exc}") from None
