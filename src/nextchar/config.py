"""Typed configuration: dataclasses validated on construction, with a JSON round trip so every
run and checkpoint records exactly what built it. No defaults hide anywhere else."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, Union

from nextchar.errors import NextcharError

Cell = Literal["rnn", "lstm", "gru"]
InputKind = Literal["onehot", "embedding"]
CELLS: tuple[str, ...] = ("rnn", "lstm", "gru")
INPUT_KINDS: tuple[str, ...] = ("onehot", "embedding")
NONLINEARITIES: tuple[str, ...] = ("tanh", "relu")
TOKENIZERS: tuple[str, ...] = ("char", "byte", "word", "bpe")
MODEL_KINDS: tuple[str, ...] = ("recurrent", "gpt2")

T = TypeVar("T")


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
    """Refuse NaN and infinity in every float field of a config dataclass: `--lr inf` or
    `--grad-clip nan` would pass every comparison below (or fail none) and train to NaN."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            flag = "--" + f.name.replace("_", "-")
            raise NextcharError(f"{flag} must be a finite number, got {value}")


@dataclass(frozen=True)
class ModelConfig:
    """A language model. kind "recurrent": ids -> input vectors -> nn.RNN/LSTM/GRU -> Linear
    -> logits; kind "gpt2": transformers' GPT2LMHeadModel (the n_* fields and block_size)."""

    # Set from the tokenizer when training starts; None only before that.
    vocab_size: int | None = None
    kind: str = "recurrent"  # recurrent | gpt2
    # gpt2: layers, heads, width and context; `init` fine-tunes a pretrained GPT-2 (a hub name
    # or a save_pretrained directory) instead, and then its own sizes replace these.
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 256
    init: str | None = None
    # The defaults are the documented CPU default (README, "The CPU default").
    cell: Cell = "gru"
    hidden_size: int = 384
    num_layers: int = 2
    input: InputKind = "embedding"
    # Width of the embedding; None means hidden_size. Unused for one-hot input (width = vocab).
    embedding_dim: int | None = 64
    nonlinearity: str = "tanh"  # rnn only
    bias: bool = True
    dropout: float = 0.0  # between layers (torch's `dropout`) and before the output layer
    proj_size: int = 0  # lstm only: project h to this size (0 = off)
    # Share the input embedding with the output layer (Press & Wolf 2017): fewer parameters
    # and usually a lower loss. Needs embedding input whose width equals H_out.
    tie_weights: bool = False
    bidirectional: bool = False  # always refused; kept so the refusal can say why

    def __post_init__(self) -> None:
        all_finite(self)
        if self.vocab_size is not None:
            at_least("vocab_size", self.vocab_size, 2)
        one_of("model", self.kind, MODEL_KINDS)
        at_least("n_layer", self.n_layer, 1)
        at_least("n_head", self.n_head, 1)
        at_least("block_size", self.block_size, 2)
        if self.n_embd % self.n_head:
            raise NextcharError(
                f"--n-embd ({self.n_embd}) must be a multiple of --n-head ({self.n_head})"
            )
        if self.init is not None and self.kind != "gpt2":
            raise NextcharError("--init fine-tunes a pretrained GPT-2; add --model gpt2")
        one_of("cell", self.cell, CELLS)
        one_of("input", self.input, INPUT_KINDS)
        one_of("nonlinearity", self.nonlinearity, NONLINEARITIES)
        at_least("hidden_size", self.hidden_size, 1)
        at_least("num_layers", self.num_layers, 1)
        if self.embedding_dim is not None:
            at_least("embedding_dim", self.embedding_dim, 1)
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
        if self.tie_weights and (
            self.input != "embedding"
            or (self.embedding_dim or self.hidden_size) != self.output_size
        ):
            raise NextcharError(
                "tie_weights needs embedding input whose width equals the recurrent output "
                f"size ({self.output_size}); set --embedding-dim {self.output_size} or drop "
                "--tie-weights"
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
            return self.vocab_size or 0
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


@dataclass(frozen=True)
class TrainConfig:
    """How to train: data handling, batching, optimisation, budget and bookkeeping.

    The defaults are the documented CPU default (README, "Training"): measured to give the
    best validation bits per character we found in 8 minutes on 2 CPU cores.
    """

    # data
    files: tuple[str, ...] = ()  # training text: files or directories (recorded for --resume)
    val_file: str | None = None  # validation text; None = the tail of the training text
    val_fraction: float = 0.1
    encoding: str = "utf-8"
    errors: str = "strict"  # or "replace": bad bytes become U+FFFD
    tokenizer: str = "char"  # char | byte | word
    normalization: str = "nfc"  # nfc | nfd | none
    unk: bool = False  # reserve U+FFFD for characters unseen in training
    # word level: which words get their own id (the rest share <unk>), and how text is split
    min_freq: int = 2
    max_vocab: int | None = None
    word_split: str = "unicode"  # unicode (words and punctuation) | whitespace
    lowercase: bool = False
    # input embedding: None = random init; "word2vec" = train word2vec (gensim) on the training
    # split first; or a path to pretrained vectors (word2vec text/binary, GloVe, KeyedVectors)
    embeddings: str | None = None
    freeze_embeddings: bool = False
    w2v_algorithm: str = "skipgram"  # skipgram | cbow
    w2v_window: int = 5
    w2v_epochs: int = 5
    bpe_vocab: int = 1024  # tokenizer bpe: vocabulary size of the byte-level BPE learned here
    # batching: B contiguous streams with the state carried across windows, or random windows
    batch_size: int = 64
    seq_len: int = 64
    batching: str = "streams"
    # optimisation
    optimizer: str = "adamw"  # adam | adamw
    lr: float = 6e-3
    min_lr_ratio: float = 0.05  # the schedule decays to lr * min_lr_ratio
    warmup_steps: int = 100
    schedule: str = "cosine"  # cosine | constant | step
    step_every: int = 1000  # schedule "step": multiply the lr by step_gamma every N steps
    step_gamma: float = 0.5
    weight_decay: float = 0.01
    grad_clip: float = 1.0  # max global gradient norm; 0 = off
    # budget and bookkeeping
    max_steps: int | None = 1250
    max_time: float | None = None  # seconds of wall clock; stops early when reached
    eval_every: int = 250
    eval_tokens: int | None = 100_000  # validation tokens per periodic evaluation (None: all)
    log_every: int = 10
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # auto (GPT-2 on CUDA: bf16; else fp32) | fp32 | bf16
    compile: bool = False  # torch.compile the training step's model (README, "Precision")

    def __post_init__(self) -> None:
        all_finite(self)
        check_seed("--seed", self.seed)
        one_of("tokenizer", self.tokenizer, TOKENIZERS)
        one_of("word_split", self.word_split, ("unicode", "whitespace"))
        one_of("w2v_algorithm", self.w2v_algorithm, ("skipgram", "cbow"))
        at_least("min_freq", self.min_freq, 1)
        at_least("w2v_window", self.w2v_window, 1)
        at_least("w2v_epochs", self.w2v_epochs, 1)
        at_least("bpe_vocab", self.bpe_vocab, 257)
        if self.max_vocab is not None:
            at_least("max_vocab", self.max_vocab, 2)
        word_options = self.min_freq != 2 or self.max_vocab is not None or self.lowercase
        if self.tokenizer != "word" and (word_options or self.word_split != "unicode"):
            raise NextcharError(
                "--min-freq, --max-vocab, --word-split and --lowercase apply to word level "
                "only; add --level word"
            )
        if self.freeze_embeddings and self.embeddings is None:
            raise NextcharError(
                "--freeze-embeddings keeps the initial embedding fixed; give --embeddings "
                "word2vec or a vectors file to initialise it from"
            )
        one_of("normalization", self.normalization, ("nfc", "nfd", "none"))
        one_of("errors", self.errors, ("strict", "replace"))
        one_of("batching", self.batching, ("streams", "random"))
        one_of("optimizer", self.optimizer, ("adam", "adamw"))
        one_of("schedule", self.schedule, ("cosine", "constant", "step"))
        one_of("precision", self.precision, ("auto", "fp32", "bf16"))
        at_least("batch_size", self.batch_size, 1)
        at_least("seq_len", self.seq_len, 1)
        at_least("warmup_steps", self.warmup_steps, 0)
        at_least("eval_every", self.eval_every, 1)
        at_least("log_every", self.log_every, 1)
        at_least("step_every", self.step_every, 1)
        if self.max_steps is not None:
            at_least("max_steps", self.max_steps, 1)
        if self.eval_tokens is not None:
            at_least("eval_tokens", self.eval_tokens, 2)
        if self.max_steps is None and self.max_time is None:
            raise NextcharError("give a budget: --max-steps N and/or --max-time SECONDS")
        if self.max_time is not None and not self.max_time > 0:
            raise NextcharError(f"--max-time must be > 0 seconds, got {self.max_time}")
        if not self.lr > 0:
            raise NextcharError(f"--lr must be > 0, got {self.lr}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise NextcharError(f"--min-lr-ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.grad_clip < 0 or self.weight_decay < 0:
            raise NextcharError("--grad-clip and --weight-decay must be >= 0")
        if not 0.0 < self.val_fraction < 1.0:
            raise NextcharError(f"--val-fraction must be in (0, 1), got {self.val_fraction}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = {**data, "files": tuple(data.get("files", ()))}
        return from_dict(cls, data)


# One sample's length cap: a typo such as --length 10**20 must not run until the machine dies;
# a million characters takes 15-20 minutes at laptop speed and is a book, not a sample.
MAX_SAMPLE_LENGTH = 1_000_000


@dataclass(frozen=True)
class SampleConfig:
    """How to pick each next token: greedy, or sampled with temperature / top-k / top-p."""

    length: int = 500
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    greedy: bool = False
    seed: int = 0
    num_samples: int = 1
    # >1 divides the logit of every token already in the text by this (multiplies it when
    # negative), as in CTRL and transformers: less looping on the same words
    repetition_penalty: float = 1.0
    num_beams: int = 1  # GPT-2: beam search for the most likely continuation (not streamed)

    def __post_init__(self) -> None:
        all_finite(self)
        check_seed("--seed", self.seed)
        at_least("length", self.length, 0)
        if self.length > MAX_SAMPLE_LENGTH:
            raise NextcharError(
                f"--length {self.length:,} is more than nextchar generates in one go "
                f"({MAX_SAMPLE_LENGTH:,} tokens); ask for less, or run sample again with the "
                "end of the text as --prime"
            )
        at_least("num_samples", self.num_samples, 1)
        at_least("num_beams", self.num_beams, 1)
        if not self.repetition_penalty > 0:
            raise NextcharError(
                f"--repetition-penalty must be > 0 (1 = off), got {self.repetition_penalty}"
            )
        if not self.temperature > 0:
            raise NextcharError(
                f"--temperature must be > 0 (use --greedy for the most likely "
                f"token), got {self.temperature}"
            )
        if self.top_k is not None and self.top_k < 1:
            raise NextcharError(f"--top-k must be >= 1, got {self.top_k}")
        if self.top_p is not None and not 0.0 < self.top_p <= 1.0:
            raise NextcharError(f"--top-p must be in (0, 1], got {self.top_p}")


# Word level on a laptop CPU: the output layer has one row per word (about 17,000 for the
# Shakespeare corpus), so the model is narrower and the windows shorter than the character
# default; dropout because a word corpus of a million tokens overfits within a few epochs.
# `nextchar train --level word` starts from these; flags given on the command line win.
# Measured in README ("Word level").
WORD_LEVEL: dict[str, dict[str, Any]] = {
    "model": {
        "cell": "lstm",
        "hidden_size": 256,
        "num_layers": 1,
        "embedding_dim": 128,
        "dropout": 0.3,
    },
    "train": {
        "tokenizer": "word",
        "batch_size": 32,
        "seq_len": 32,
        "lr": 3e-3,
        "max_steps": 1000,
        "eval_every": 200,
    },
}


# GPT-2 from scratch on a laptop CPU: a small model, windows of the whole context, and the
# learning rate and warm-up transformers are usually trained with. No dropout: on short
# budgets the model underfits, and dropout (attention dropout above all) made a CPU step
# 1.8x slower (README, "GPT-2"). `nextchar train --model gpt2` starts from these; flags given
# on the command line win.
GPT2_LEVEL: dict[str, dict[str, Any]] = {
    "model": {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 128, "dropout": 0.0},
    "train": {"batch_size": 32, "seq_len": 128, "lr": 1e-3, "warmup_steps": 100},
}
