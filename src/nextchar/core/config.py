"""Typed configuration: dataclasses validated on construction, with a JSON round trip so every
run and checkpoint records exactly what built it. No defaults hide anywhere else."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Literal

from nextchar.core.checks import SEED_MAX, check_fields, from_dict
from nextchar.core.errors import NextcharError
from nextchar.core.options import did_you_mean, flag, opt

Kind = Literal["recurrent", "gpt2"]
# Every choice is one Literal type: the dataclasses validate against it, and the command line
# derives its `choices` from it.
FusedCell = Literal["rnn", "lstm", "gru"]  # PyTorch's own modules: the lab and shapes use these
# minGRU / minLSTM (Feng et al. 2024): gates from the input only, trained by a parallel scan
Cell = Literal["rnn", "lstm", "gru", "mingru", "minlstm"]
InputKind = Literal["onehot", "embedding"]
Nonlinearity = Literal["tanh", "relu"]
TokenizerKind = Literal["char", "byte", "word", "bpe"]
Normalization = Literal["nfc", "nfd", "none"]
Errors = Literal["strict", "replace"]
WordSplit = Literal["unicode", "whitespace"]
W2VAlgorithm = Literal["skipgram", "cbow"]
Batching = Literal["streams", "random"]
Optimizer = Literal["adam", "adamw"]
Schedule = Literal["cosine", "constant", "step"]
Device = Literal["auto", "cpu", "cuda", "mps"]
Precision = Literal["auto", "fp32", "bf16"]

CELLS: tuple[str, ...] = typing.get_args(Cell)
# The budget of `nextchar train` given none (the presets have their own): 8 minutes of the
# whole command, a character-level model sized to the machine for them (training/sizing.py).
# TrainConfig itself defaults to `max_steps`, a run that repeats bit for bit.
DEFAULT_TIME = 480.0
DEVICE_CHOICES: tuple[str, ...] = typing.get_args(Device)


@dataclass(frozen=True)
class RecurrentConfig:
    """A recurrent language model: ids -> input vectors -> RNN/LSTM/GRU (or minGRU/minLSTM)
    -> Linear -> logits. The defaults are the CPU default (bench/RESULTS.md)."""

    kind: Kind = opt(
        "recurrent",
        "recurrent (RNN/LSTM/GRU) or gpt2 (a transformer, via HuggingFace transformers)",
    )
    vocab_size: int | None = opt(None, low=2)  # set from the tokenizer when training starts
    cell: Cell = opt(
        "gru", "recurrent cell: rnn, lstm, gru (fused kernels) or mingru, minlstm (parallel scan)"
    )
    hidden_size: int = opt(384, "hidden units per layer", low=1)
    num_layers: int = opt(2, "stacked recurrent layers", low=1)
    input: InputKind = opt("embedding", "input encoding: embedding (fast) or onehot (the lab's)")
    # Unused for one-hot input, whose width is the vocabulary.
    embedding_dim: int | None = opt(
        64, "embedding width (none: the hidden size)", aliases=("emb_dim",), low=1
    )
    nonlinearity: Nonlinearity = opt("tanh")  # rnn only
    bias: bool = opt(True)
    dropout: float = opt(
        0.0, "dropout between layers and before the output layer", low=0.0, below=1
    )
    proj_size: int = opt(0, "LSTM projection size (0 = off)", low=0)
    # Share the input embedding with the output layer (Press & Wolf 2017): fewer parameters
    # and usually a lower loss. Needs embedding input whose width equals H_out.
    tie_weights: bool = opt(
        False, "share the embedding with the output layer (needs embedding dim = H_out)"
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if self.kind != "recurrent":
            raise NextcharError(f"a recurrent config has kind 'recurrent', not {self.kind!r}")
        if self.nonlinearity != "tanh" and self.cell != "rnn":
            raise NextcharError(
                f"{flag('nonlinearity')} applies to the rnn cell only, not {self.cell}"
            )
        if self.proj_size:
            if self.cell != "lstm":
                raise NextcharError(
                    f"{flag('proj_size')} is an LSTM option; the {self.cell} cell has none"
                )
            if not self.proj_size < self.hidden_size:
                raise NextcharError(
                    f"{flag('proj_size')} must be in 1..{flag('hidden_size')}-1 "
                    f"({self.hidden_size - 1}), got {self.proj_size}"
                )
        if self.tie_weights and (
            self.input != "embedding"
            or (self.embedding_dim or self.hidden_size) != self.output_size
        ):
            raise NextcharError(
                "tying the embedding to the output layer needs embedding input whose width "
                f"equals the recurrent output size ({self.output_size}); set "
                f"{flag('embedding_dim', self.output_size)} or drop {flag('tie_weights')}"
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

    @property
    def pretrained(self) -> str | None:
        """The pretrained model a run starts from: none for a recurrent model."""
        return None

    def describe(self) -> str:
        return f"{self.cell} {self.num_layers}x{self.hidden_size}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class GPT2Config:
    """A GPT-2 (transformers' GPT2LMHeadModel) trained from scratch with these sizes, or, with
    `init`, a pretrained one fine-tuned (its own sizes then replace these)."""

    kind: Literal["gpt2"] = opt("gpt2")
    vocab_size: int | None = opt(None, low=2)  # set from the tokenizer when training starts
    init: str | None = opt(
        None, "gpt2: fine-tune this pretrained GPT-2 (hub name or save_pretrained directory)"
    )
    n_layer: int = opt(4, "gpt2 from scratch: transformer blocks", low=1)
    n_head: int = opt(4, "gpt2 from scratch: attention heads", low=1)
    n_embd: int = opt(128, "gpt2 from scratch: width", low=1)
    block_size: int = opt(128, "gpt2 from scratch: context length in tokens", low=2)
    dropout: float = opt(0.0, low=0.0, below=1)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.n_embd % self.n_head:
            raise NextcharError(
                f"{flag('n_embd')} ({self.n_embd}) must be a multiple of {flag('n_head')} "
                f"({self.n_head})"
            )

    @property
    def pretrained(self) -> str | None:
        """The pretrained GPT-2 a run fine-tunes (`init`), or None to train from scratch."""
        return self.init

    def describe(self) -> str:
        return f"gpt2 {self.n_layer}L {self.n_head}H {self.n_embd}d"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


ModelConfig = RecurrentConfig | GPT2Config
MODEL_CONFIGS: dict[str, type] = {"recurrent": RecurrentConfig, "gpt2": GPT2Config}
# written by nextchar 0.1.0 into every config.json, whatever the kind: read and left out
_LEGACY = {"bidirectional": False}


def model_config(kind: str = "recurrent", **fields: Any) -> ModelConfig:
    """The model config of `kind`; a field of the other kind is refused by name (a GPT-2
    has no cell, a recurrent model no heads)."""
    if kind not in MODEL_CONFIGS:
        raise NextcharError(
            f"{flag('kind')} must be one of {', '.join(MODEL_CONFIGS)}, got {kind!r}"
        )
    cls = MODEL_CONFIGS[kind]
    names = {f.name for f in dataclasses.fields(cls)}
    every = {f.name for c in MODEL_CONFIGS.values() for f in dataclasses.fields(c)}
    for name in sorted(set(fields) - names):
        owners = [
            k for k, c in MODEL_CONFIGS.items() if name in {f.name for f in dataclasses.fields(c)}
        ]
        if owners:  # an option of the other kind
            raise NextcharError(
                f"{flag(name)} is an option of {flag('kind', owners[0])} models, not of "
                f"{flag('kind', kind)} ones: add {flag('kind', owners[0])} or drop {flag(name)}"
            )
        known = [flag(n) for n in every]
        raise NextcharError(f"a model has no option {flag(name)}{did_you_mean(flag(name), known)}")
    return cls(kind=kind, **fields)


def model_config_from_dict(data: Any) -> ModelConfig:
    """A model config from JSON (config.json): its kind picks the class; the fields that
    nextchar 0.1.0 wrote for both kinds are read and left out."""
    if not isinstance(data, dict):
        raise NextcharError(f"a model config must be a JSON object, got {type(data).__name__}")
    kind = data.get("kind", "recurrent")
    if not isinstance(kind, str) or kind not in MODEL_CONFIGS:
        raise NextcharError(f"unknown model kind {kind!r} (known: {', '.join(MODEL_CONFIGS)})")
    cls = MODEL_CONFIGS[kind]
    names = {f.name for f in dataclasses.fields(cls)}
    old_other = {f.name for c in MODEL_CONFIGS.values() for f in dataclasses.fields(c)} - names
    if data.get("bidirectional", False) is not False:
        raise NextcharError("a bidirectional model cannot predict the next character")
    kept = {k: v for k, v in data.items() if k not in old_other and k not in _LEGACY}
    return from_dict(cls, kept)


@dataclass(frozen=True)
class TrainConfig:
    """How to train: data handling, batching, optimisation, budget and bookkeeping.

    The defaults are the CPU default: what gave the best validation bits per character in 8
    minutes on 2 CPU cores (bench/quality.py, bench/RESULTS.md).
    """

    # data
    files: tuple[str, ...] = ()  # training text: files or directories (recorded for resume)
    val_file: str | None = opt(
        None,
        "validation text (default: a built-in corpus's own, NAME:val; else the last "
        "`val_fraction` of the training text)",
    )
    val_fraction: float = opt(
        0.1,
        "share of the text held out for validation when no `val_file` is given",
        above=0,
        below=1,
    )
    encoding: str = opt("utf-8", "text encoding of the files")
    errors: Errors = opt(
        "strict", "invalid bytes: strict (error naming file and offset) or replace (U+FFFD)"
    )
    tokenizer: TokenizerKind = opt(
        "char",
        "char (one id per character), byte (UTF-8 bytes, vocabulary 256), word, or bpe "
        "(byte-level BPE learned from the text; `bpe_vocab`)",
    )
    normalization: Normalization = opt(
        "nfc", "nfc (Hangul syllables whole), nfd (jamo), none (text as is)"
    )
    unk: bool = opt(False, "reserve U+FFFD for characters unseen in training (eval counts them)")
    # word level: which words get their own id (the rest share <unk>), and how text is split
    min_freq: int = opt(2, "word level: words seen fewer times share the <unk> id", low=1)
    max_vocab: int | None = opt(
        None, "word level: keep at most this many words, most frequent first (with <unk>)", low=2
    )
    word_split: WordSplit = opt(
        "unicode", "word level: unicode (words and punctuation apart) or whitespace"
    )
    lowercase: bool = opt(False, "word level: fold case before counting and reading words")
    # input embedding: None = random init; "word2vec" = train word2vec (gensim) on the training
    # split first; or a path to pretrained vectors (word2vec text/binary, GloVe, KeyedVectors)
    embeddings: str | None = opt(
        None,
        "initialise the input embedding: 'word2vec' (trained with gensim on the training "
        "text) or a vectors file (word2vec text/binary, GloVe, gensim KeyedVectors)",
        metavar="word2vec|PATH",
    )
    freeze_embeddings: bool = opt(
        False, "keep the initialised embedding fixed instead of fine-tuning it"
    )
    w2v_algorithm: W2VAlgorithm = opt("skipgram", "word2vec: skipgram or cbow")
    w2v_window: int = opt(5, "word2vec: context window (words each side)", low=1)
    w2v_epochs: int = opt(5, "word2vec: passes over the training text", low=1)
    bpe_vocab: int = opt(
        1024,
        "`tokenizer` bpe: size of the byte-level BPE vocabulary learned from the text",
        low=257,
    )
    # batching: B contiguous streams with the state carried across windows, or random windows
    batch_size: int = opt(64, "B: parallel streams per batch", low=1)
    seq_len: int = opt(64, "T: characters per window (back-propagation through time length)", low=1)
    batching: Batching = opt("streams", "streams (state carried across windows) or random windows")
    # optimisation
    optimizer: Optimizer = opt("adamw", "adam or adamw")
    lr: float = opt(6e-3, "peak learning rate", above=0)
    min_lr_ratio: float = opt(0.05, "the schedule decays to lr times this", low=0, high=1)
    warmup_steps: int = opt(100, "linear warm-up steps", low=0)
    schedule: Schedule = opt("cosine", "cosine, constant or step")
    step_every: int = opt(1000, "schedule step: decay every N steps", low=1)
    step_gamma: float = opt(0.5, "schedule step: decay factor")
    weight_decay: float = opt(0.01, "AdamW weight decay (matrices only)", low=0)
    grad_clip: float = opt(1.0, "clip the global gradient norm to this (0 = off)", low=0)
    # budget and bookkeeping
    max_steps: int | None = opt(1250, "stop after this many optimizer steps", low=1)
    max_time: float | None = opt(
        None,
        "stop after this much wall-clock time: seconds, or 90s / 8m / 1.5h (without "
        "`max_steps`: no step cap, and the learning-rate schedule follows the clock)",
        parse="duration",
        above=0,
    )
    eval_every: int = opt(250, "evaluate on validation every N steps (and save last/best)", low=1)
    eval_tokens: int | None = opt(
        100_000, "validation tokens per periodic evaluation (the final one uses all)", low=2
    )
    log_every: int = opt(10, "write a metrics line every N steps", low=1)
    seed: int = opt(0, "random seed", low=0, high=SEED_MAX)
    device: Device = opt("auto", "auto (cuda > mps > cpu), cpu, cuda or mps")
    precision: Precision = opt(
        "auto",
        "auto (bf16 autocast for GPT-2 on CUDA; fp32 for recurrent models, whose cuDNN "
        "kernels use TF32, and on CPUs), fp32 or bf16 (on a CPU fast only with AMX)",
    )
    compile: bool = opt(
        False, "torch.compile the model for training (it compiles first, for some seconds)"
    )
    threads: int | None = opt(
        None,
        "CPU threads (default: OMP_NUM_THREADS if set, else the fastest count, timed while "
        "training); a count that collapses beside a busy program is left, with one line, for "
        "fewer; the losses do not depend on it",
        low=1,
    )
    keep_threads: bool = opt(
        False, "keep `threads` (or OMP_NUM_THREADS) even where fewer threads run much faster"
    )
    # A time budget given no shape: the run picks its shape at the start (training/sizing.py).
    # Set by plan_run, recorded in config.json; not a flag (shape flags turn it off).
    size_to_machine: bool = opt(False)

    def __post_init__(self) -> None:
        check_fields(self)
        word_options = self.min_freq != 2 or self.max_vocab is not None or self.lowercase
        if self.tokenizer != "word" and (word_options or self.word_split != "unicode"):
            raise NextcharError(
                f"{flag('min_freq')}, {flag('max_vocab')}, {flag('word_split')} and "
                f"{flag('lowercase')} apply to word level "
                f"only; add {flag('level', 'word')}"
            )
        if self.freeze_embeddings and self.embeddings is None:
            raise NextcharError(
                f"{flag('freeze_embeddings')} keeps the initial embedding fixed; give "
                f"{flag('embeddings')} "
                "word2vec or a vectors file to initialise it from"
            )
        if self.max_steps is None and self.max_time is None:
            raise NextcharError(
                f"give a budget: {flag('max_steps')} N and/or {flag('max_time')} SECONDS"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = {**data, "files": tuple(data.get("files", ()))}
        return from_dict(cls, data)


Level = Literal["char", "word"]


@dataclass(frozen=True)
class RunConfig:
    """Where a training run goes and how it reports (the train command's own options)."""

    out: str | None = opt(
        None, "run directory (none: runs/<first file's name>, numbered if taken)", metavar="DIR"
    )
    resume: str | None = opt(
        None,
        "continue this run from its last checkpoint (files, model and settings come from it)",
        metavar="RUN",
    )
    level: Level | None = opt(
        None,
        "predict characters (char, the default) or words; word is `tokenizer` word and starts "
        "from the word-level defaults (LSTM 1x256, embedding 128, dropout 0.3, batch 32x32, lr "
        "3e-3, 1000 steps) instead of the character ones shown below",
    )
    quiet: bool = opt(False, "no progress bar")
    processes: int = opt(
        1,
        "train in N processes on this machine (DistributedDataParallel: one per GPU, or CPU "
        "processes with `device` cpu); on several machines, torchrun (docs/gpu.md)",
        low=1,
        metavar="N",
    )

    def __post_init__(self) -> None:
        check_fields(self)
