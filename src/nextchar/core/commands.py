"""The options of the commands that use a model or teach: sampling, the lab, the shapes.
Like the training configs (config.py), dataclasses validated on construction from their
option fields, whoever builds them: the command line, a notebook's keywords, the server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nextchar.core.checks import SEED_MAX, check_fields
from nextchar.core.config import CELLS, Cell, Device, Errors, FusedCell, Nonlinearity
from nextchar.core.errors import NextcharError
from nextchar.core.options import flag, opt
from nextchar.core.outputs import OVERWRITE_HELP

# `nextchar chat` continues each line briefly and a little more conservatively than `sample`
CHAT_SAMPLING: dict[str, Any] = {"length": 120, "temperature": 0.8}

# One sample's length cap: a typo such as length 10**20 must not run until the machine dies;
# a million characters takes 15-20 minutes at laptop speed and is a book, not a sample.
MAX_SAMPLE_LENGTH = 1_000_000


@dataclass(frozen=True)
class SampleConfig:
    """How to pick each next token: greedy, or sampled with temperature / top-k / top-p."""

    length: int = opt(
        500,
        "tokens to generate",
        low=0,
        high=MAX_SAMPLE_LENGTH,
        hint="ask for less, or run sample again with the end of the text as `prime`",
    )
    temperature: float = opt(
        1.0, "softmax temperature, > 0", above=0, hint="use `greedy` for the most likely token"
    )
    top_k: int | None = opt(None, "sample from the k most likely only", low=1)
    top_p: float | None = opt(
        None, "sample from the smallest set with this much probability (nucleus)", above=0, high=1
    )
    greedy: bool = opt(False, "always take the most likely token")
    seed: int = opt(0, "random seed", low=0, high=SEED_MAX)
    num_samples: int = opt(1, "how many samples", low=1)
    # >1 divides the logit of every token already in the text by this (multiplies it when
    # negative), as in CTRL and transformers: less looping on the same words
    repetition_penalty: float = opt(
        1.0,
        "divide the scores of tokens already in the text by this (1 = off; 1.2 is usual)",
        above=0,
    )
    num_beams: int = opt(
        1, "GPT-2: beam search with this many beams (deterministic, printed at the end)", low=1
    )

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class ShapeConfig:
    """The module and input whose shapes `nextchar shapes` explains."""

    cell: FusedCell = opt("rnn", "module")
    input_size: int = opt(4, "H_in", low=1)
    hidden_size: int = opt(2, "hidden_size", low=1)
    num_layers: int = opt(1, "stacked layers", low=1)
    bidirectional: bool = opt(False, "D = 2")
    proj_size: int = opt(0, "LSTM projection size", low=0)
    batch_first: bool = opt(
        True,
        "input/output as (N, L, H); `seq_first`: (L, N, H), torch's own default",
        negative="seq_first",
    )
    batch: int = opt(1, "N, the batch size", low=1)
    seq_len: int = opt(5, "L, the sequence length", low=1)
    unbatched: bool = opt(False, "no batch dimension at all")
    bias: bool = opt(True)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.proj_size and self.cell != "lstm":
            raise NextcharError(
                f"{flag('proj_size')} is an LSTM option; nn.{self.cell.upper()} has none"
            )
        if self.proj_size >= self.hidden_size:
            raise NextcharError(
                f"{flag('proj_size')} must be smaller than {flag('hidden_size')} "
                f"({self.hidden_size}), got {self.proj_size}"
            )

    @property
    def d(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def h_out(self) -> int:
        return self.proj_size or self.hidden_size


LAB_SENTENCE = " seoul is the capital of south korea"


@dataclass(frozen=True)
class LabConfig:
    """The lab's settings; the defaults are the notes' values."""

    sentence: str = opt(LAB_SENTENCE, "text to learn, any Unicode")
    cell: FusedCell = opt("rnn", "recurrent cell")
    epochs: int = opt(500, "full-batch epochs", low=1)
    lr: float = opt(1e-3, "Adam learning rate", above=0)
    hidden_size: int | None = opt(
        None, "hidden units (default: the vocabulary size, as in the notes)", low=1
    )
    num_layers: int = opt(1, "stacked layers", low=1)
    nonlinearity: Nonlinearity = opt("tanh", "activation of the rnn cell (rnn only)")
    seed: int = opt(0, "random seed", low=0, high=SEED_MAX)
    device: Device = opt("auto", "where to run: auto = cuda > mps > cpu")
    every: int = opt(50, "print every N epochs (and the first and the last)", low=1)
    threads: int | None = opt(
        None, "CPU threads (default: OMP_NUM_THREADS if set, else 1: a tiny model's step)", low=1
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if len(self.sentence) < 2:
            raise NextcharError(
                f"the sentence needs at least 2 characters (input = all but the last, target = "
                f"all but the first); got {len(self.sentence)}: {self.sentence!r}"
            )


@dataclass(frozen=True)
class EvalConfig:
    """How `eval` and `compare` read a text and score it."""

    encoding: str = opt("utf-8", "text encoding of the files")
    errors: Errors = opt("strict", "invalid bytes: strict (an error) or replace (U+FFFD)")
    batch_size: int | None = opt(
        None,
        "texts scored at once: contiguous streams of a recurrent model (none: 128) or "
        "windows of GPT-2 (none: 16)",
        low=1,
    )
    seq_len: int = opt(256, "window length", low=1)
    stride: int | None = opt(
        None,
        "GPT-2: tokens the sliding window moves by; each token is predicted with at least "
        "context - stride tokens before it (none: half the context)",
        low=1,
    )
    dynamic: bool = opt(
        False,
        "also dynamic evaluation (Krause et al. 2018): the model adapts to the text as it "
        "scores it, one RMS step per segment after scoring it; reported apart from the "
        "static number",
    )
    dynamic_lr: float | None = opt(
        None, "dynamic evaluation's step size (none: 3e-4)", above=0, high=1
    )
    dynamic_decay: float | None = opt(
        None, "dynamic evaluation's pull back to the trained weights (none: 1e-3)", low=0, below=1
    )
    json: bool = opt(False, "print one JSON object per text (eval) or model (compare)")
    overwrite: bool = opt(False, OVERWRITE_HELP + " (compare's chart)")

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.dynamic and (self.dynamic_lr, self.dynamic_decay) != (None, None):
            raise NextcharError(
                f"{flag('dynamic_lr')} and {flag('dynamic_decay')} need {flag('dynamic')}"
            )

    def dynamic_options(self) -> dict[str, float]:
        """The dynamic-evaluation settings given (inference.dynamic.DynamicConfig's names)."""
        given = {"lr": self.dynamic_lr, "decay": self.dynamic_decay}
        return {k: v for k, v in given.items() if v is not None}


@dataclass(frozen=True)
class ShowConfig:
    """How much of a distribution, a neighbourhood or a report is shown."""

    top_k: int = opt(10, "how many to show", low=1, aliases=("top",))

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class ExportConfig:
    """What `nextchar export` writes."""

    opset: int = opt(17, "ONNX opset", low=7, high=20)
    overwrite: bool = opt(False, OVERWRITE_HELP)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class ServeConfig:
    """Where `nextchar serve` listens and whom it answers."""

    host: str = opt(
        "127.0.0.1",
        "address to bind (this machine only; 0.0.0.0 opens it to the network, with no login)",
    )
    port: int = opt(8000, "port", low=1, high=65535)
    allowed_host: tuple[str, ...] = opt(
        (),
        "also answer requests whose Host header is NAME (repeatable); loopback names and IP "
        "addresses are always accepted, other names are refused (DNS rebinding)",
        repeat=True,
        metavar="NAME",
    )

    def __post_init__(self) -> None:
        check_fields(self)


LONG_RANGE_TASKS = ("remember", "brackets")


@dataclass(frozen=True)
class LongRangeConfig:
    """`nextchar experiment long-range`: which cells learn an answer D steps back. The
    quick preset (the default) and the full one (`full`) are classroom/long_range.py's;
    options given explicitly change a preset."""

    full: bool = opt(
        False, "longer distances, more seeds and steps (a GPU or a long CPU run)",
        negative="quick",
    )  # fmt: skip
    tasks: tuple[str, ...] = opt(LONG_RANGE_TASKS, "comma-separated: remember,brackets")
    cells: tuple[Cell, ...] = opt(CELLS, "comma-separated: rnn,lstm,gru,mingru,minlstm")
    distances: tuple[int, ...] = opt((2, 5, 10, 20, 40), "comma-separated distances")
    seeds: int = opt(2, "seeds per setting", low=1)
    steps: int = opt(300, "training steps per model", low=1)
    batch_size: int = opt(64, low=1)
    hidden_size: int = opt(32, "hidden units", low=1)
    lr: float = opt(1e-2, above=0)
    eval_size: int = opt(512, low=1)
    device: Device = opt("cpu", "where to run: auto = cuda > mps > cpu")
    out: str | None = opt(
        None, "the folder for results.json and the plots (default: runs/long-range, "
        "numbered if it holds results)"
    )  # fmt: skip
    overwrite: bool = opt(False, OVERWRITE_HELP)

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.distances or min(self.distances) < 1:
            raise NextcharError(f"{flag('distances')} must be a list of integers >= 1")
        if not self.cells:
            raise NextcharError(f"{flag('cells')} takes {', '.join(CELLS)}")
        if set(self.tasks) - set(LONG_RANGE_TASKS) or not self.tasks:
            raise NextcharError(f"{flag('tasks')} takes {', '.join(LONG_RANGE_TASKS)}")


# The quick run keeps the lesson's three cells (about 75 s); cells or full add minGRU and
# minLSTM (their gates read the input only: docs/long-range.md).
QUICK = LongRangeConfig(cells=("rnn", "lstm", "gru"), steps=250)
FULL = LongRangeConfig(
    full=True,
    distances=(2, 5, 10, 20, 50, 100, 200),
    seeds=5,
    steps=2000,
    hidden_size=128,
    lr=3e-3,
    device="auto",
)
