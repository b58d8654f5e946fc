"""Typed configuration: dataclasses validated on construction, with a JSON round trip so every
run and checkpoint records exactly what built it. No defaults hide anywhere else."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Literal

from nextchar.core.checks import all_finite, at_least, check_choices, check_seed, from_dict
from nextchar.core.errors import NextcharError
from nextchar.core.options import flag, opt

# Every choice is one Literal type: the dataclasses validate against it, and the command line
# derives its `choices` from it.
Kind = Literal["recurrent", "gpt2"]
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
FUSED_CELLS: tuple[str, ...] = typing.get_args(FusedCell)
DEVICE_CHOICES: tuple[str, ...] = typing.get_args(Device)


@dataclass(frozen=True)
class ModelConfig:
    """A language model. kind "recurrent": ids -> input vectors -> nn.RNN/LSTM/GRU -> Linear
    -> logits; kind "gpt2": transformers' GPT2LMHeadModel (the n_* fields and block_size)."""

    # Set from the tokenizer when training starts; None only before that.
    vocab_size: int | None = None
    kind: Kind = opt(
        "recurrent",
        "recurrent (RNN/LSTM/GRU) or gpt2 (a transformer, via HuggingFace transformers)",
    )
    # gpt2: layers, heads, width and context; `init` fine-tunes a pretrained GPT-2 (a hub name
    # or a save_pretrained directory) instead, and then its own sizes replace these.
    init: str | None = opt(
        None, "gpt2: fine-tune this pretrained GPT-2 (hub name or save_pretrained directory)"
    )
    n_layer: int = opt(4, "gpt2 from scratch: transformer blocks")
    n_head: int = opt(4, "gpt2 from scratch: attention heads")
    n_embd: int = opt(128, "gpt2 from scratch: width")
    block_size: int = opt(256, "gpt2 from scratch: context length in tokens")
    # The defaults are the documented CPU default (README, "The CPU default").
    cell: Cell = opt(
        "gru", "recurrent cell: rnn, lstm, gru (fused kernels) or mingru, minlstm (parallel scan)"
    )
    hidden_size: int = opt(384, "hidden units per layer")
    num_layers: int = opt(2, "stacked recurrent layers")
    input: InputKind = opt("embedding", "input encoding: embedding (fast) or onehot (the lab's)")
    # Width of the embedding; None means hidden_size. Unused for one-hot input (width = vocab).
    embedding_dim: int | None = opt(
        64, "embedding width (None: the hidden size)", aliases=("emb_dim",)
    )
    nonlinearity: Nonlinearity = "tanh"  # rnn only
    bias: bool = True
    dropout: float = opt(0.0, "dropout between layers and before the output layer")
    proj_size: int = opt(0, "LSTM projection size (0 = off)")
    # Share the input embedding with the output layer (Press & Wolf 2017): fewer parameters
    # and usually a lower loss. Needs embedding input whose width equals H_out.
    tie_weights: bool = opt(
        False, "share the embedding with the output layer (needs embedding dim = H_out)"
    )
    bidirectional: bool = False  # always refused; kept so the refusal can say why

    def __post_init__(self) -> None:
        all_finite(self)
        check_choices(self)
        if self.vocab_size is not None:
            at_least("vocab_size", self.vocab_size, 2)
        at_least("n_layer", self.n_layer, 1)
        at_least("n_head", self.n_head, 1)
        at_least("block_size", self.block_size, 2)
        if self.n_embd % self.n_head:
            raise NextcharError(
                f"{flag('n_embd')} ({self.n_embd}) must be a multiple of {flag('n_head')} "
                f"({self.n_head})"
            )
        if self.init is not None and self.kind != "gpt2":
            raise NextcharError(
                f"{flag('init')} fine-tunes a pretrained GPT-2; add {flag('kind', 'gpt2')}"
            )
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
                f"size ({self.output_size}); set {flag('embedding_dim', self.output_size)} "
                "or drop "
                f"{flag('tie_weights')}"
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


@dataclass(frozen=True)
class TrainConfig:
    """How to train: data handling, batching, optimisation, budget and bookkeeping.

    The defaults are the documented CPU default (README, "Training"): measured to give the
    best validation bits per character we found in 8 minutes on 2 CPU cores.
    """

    # data
    files: tuple[str, ...] = ()  # training text: files or directories (recorded for resume)
    val_file: str | None = opt(
        None,
        "validation text (default: a built-in corpus's own, NAME:val; else the last "
        "`val_fraction` of the training text)",
    )
    val_fraction: float = opt(
        0.1, "share of the text held out for validation when no `val_file` is given"
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
    min_freq: int = opt(2, "word level: words seen fewer times share the <unk> id")
    max_vocab: int | None = opt(
        None, "word level: keep at most this many words, most frequent first (with <unk>)"
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
    w2v_window: int = opt(5, "word2vec: context window (words each side)")
    w2v_epochs: int = opt(5, "word2vec: passes over the training text")
    bpe_vocab: int = opt(
        1024,
        "`tokenizer` bpe: size of the byte-level BPE vocabulary learned from the text",
    )
    # batching: B contiguous streams with the state carried across windows, or random windows
    batch_size: int = opt(64, "B: parallel streams per batch")
    seq_len: int = opt(64, "T: characters per window (back-propagation through time length)")
    batching: Batching = opt("streams", "streams (state carried across windows) or random windows")
    # optimisation
    optimizer: Optimizer = opt("adamw", "adam or adamw")
    lr: float = opt(6e-3, "peak learning rate")
    min_lr_ratio: float = opt(0.05, "the schedule decays to lr times this")
    warmup_steps: int = opt(100, "linear warm-up steps")
    schedule: Schedule = opt("cosine", "cosine, constant or step")
    step_every: int = opt(1000, "schedule step: decay every N steps")
    step_gamma: float = opt(0.5, "schedule step: decay factor")
    weight_decay: float = opt(0.01, "AdamW weight decay (matrices only)")
    grad_clip: float = opt(1.0, "clip the global gradient norm to this (0 = off)")
    # budget and bookkeeping
    max_steps: int | None = opt(1250, "stop after this many optimizer steps")
    max_time: float | None = opt(
        None,
        "stop after this much wall-clock time: seconds, or 90s / 8m / 1.5h (without "
        "`max_steps`: no step cap, and the learning-rate schedule follows the clock)",
        parse="duration",
    )
    eval_every: int = opt(250, "evaluate on validation every N steps (and save last/best)")
    eval_tokens: int | None = opt(
        100_000, "validation tokens per periodic evaluation (the final one uses all)"
    )
    log_every: int = opt(10, "write a metrics line every N steps")
    seed: int = opt(0, "random seed")
    device: Device = opt("auto", "auto (cuda > mps > cpu), cpu, cuda or mps")
    precision: Precision = opt(
        "auto",
        "auto (bf16 autocast for GPT-2 on CUDA; fp32 for recurrent models, whose cuDNN "
        "kernels use TF32, and on CPUs), fp32 or bf16 (on a CPU fast only with AMX)",
    )
    compile: bool = opt(
        False, "torch.compile the model for training (it compiles first: 10-25 s measured)"
    )
    threads: int | None = opt(
        None,
        "CPU threads (default: OMP_NUM_THREADS if set, else the fastest count, timed while "
        "training; the losses do not depend on it)",
    )

    def __post_init__(self) -> None:
        all_finite(self)
        check_seed(f"{flag('seed')}", self.seed)
        check_choices(self)
        if self.threads is not None:
            at_least("threads", self.threads, 1)
        at_least("min_freq", self.min_freq, 1)
        at_least("w2v_window", self.w2v_window, 1)
        at_least("w2v_epochs", self.w2v_epochs, 1)
        at_least("bpe_vocab", self.bpe_vocab, 257)
        if self.max_vocab is not None:
            at_least("max_vocab", self.max_vocab, 2)
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
            raise NextcharError(
                f"give a budget: {flag('max_steps')} N and/or {flag('max_time')} SECONDS"
            )
        if self.max_time is not None and not self.max_time > 0:
            raise NextcharError(f"{flag('max_time')} must be > 0 seconds, got {self.max_time}")
        if not self.lr > 0:
            raise NextcharError(f"{flag('lr')} must be > 0, got {self.lr}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise NextcharError(
                f"{flag('min_lr_ratio')} must be in [0, 1], got {self.min_lr_ratio}"
            )
        if self.grad_clip < 0 or self.weight_decay < 0:
            raise NextcharError(f"{flag('grad_clip')} and {flag('weight_decay')} must be >= 0")
        if not 0.0 < self.val_fraction < 1.0:
            raise NextcharError(
                f"{flag('val_fraction')} must be in (0, 1), got {self.val_fraction}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = {**data, "files": tuple(data.get("files", ()))}
        return from_dict(cls, data)


# `nextchar chat` continues each line briefly and a little more conservatively than `sample`
CHAT_SAMPLING: dict[str, Any] = {"length": 120, "temperature": 0.8}

# One sample's length cap: a typo such as length 10**20 must not run until the machine dies;
# a million characters takes 15-20 minutes at laptop speed and is a book, not a sample.
MAX_SAMPLE_LENGTH = 1_000_000


@dataclass(frozen=True)
class SampleConfig:
    """How to pick each next token: greedy, or sampled with temperature / top-k / top-p."""

    length: int = opt(500, "tokens to generate")
    temperature: float = opt(1.0, "softmax temperature, > 0")
    top_k: int | None = opt(None, "sample from the k most likely only")
    top_p: float | None = opt(
        None, "sample from the smallest set with this much probability (nucleus)"
    )
    greedy: bool = opt(False, "always take the most likely token")
    seed: int = opt(0, "random seed")
    num_samples: int = opt(1, "how many samples")
    # >1 divides the logit of every token already in the text by this (multiplies it when
    # negative), as in CTRL and transformers: less looping on the same words
    repetition_penalty: float = opt(
        1.0, "divide the scores of tokens already in the text by this (1 = off; 1.2 is usual)"
    )
    num_beams: int = opt(
        1, "GPT-2: beam search with this many beams (deterministic, printed at the end)"
    )

    def __post_init__(self) -> None:
        all_finite(self)
        check_seed(f"{flag('seed')}", self.seed)
        at_least("length", self.length, 0)
        if self.length > MAX_SAMPLE_LENGTH:
            raise NextcharError(
                f"{flag('length', f'{self.length:,}')} is more than nextchar generates in one go "
                f"({MAX_SAMPLE_LENGTH:,} tokens); ask for less, or run sample again with the "
                f"end of the text as {flag('prime')}"
            )
        at_least("num_samples", self.num_samples, 1)
        at_least("num_beams", self.num_beams, 1)
        if not self.repetition_penalty > 0:
            raise NextcharError(
                f"{flag('repetition_penalty')} must be > 0 (1 = off), got {self.repetition_penalty}"
            )
        if not self.temperature > 0:
            raise NextcharError(
                f"{flag('temperature')} must be > 0 (use {flag('greedy')} for the most likely "
                f"token), got {self.temperature}"
            )
        if self.top_k is not None and self.top_k < 1:
            raise NextcharError(f"{flag('top_k')} must be >= 1, got {self.top_k}")
        if self.top_p is not None and not 0.0 < self.top_p <= 1.0:
            raise NextcharError(f"{flag('top_p')} must be in (0, 1], got {self.top_p}")


LAB_SENTENCE = " seoul is the capital of south korea"


@dataclass(frozen=True)
class LabConfig:
    """The lab's settings; the defaults are the notes' values."""

    sentence: str = opt(LAB_SENTENCE, "text to learn, any Unicode")
    cell: FusedCell = opt("rnn", "recurrent cell")
    epochs: int = opt(500, "full-batch epochs")
    lr: float = opt(1e-3, "Adam learning rate")
    hidden_size: int | None = opt(
        None, "hidden units (default: the vocabulary size, as in the notes)"
    )
    num_layers: int = opt(1, "stacked layers")
    nonlinearity: Nonlinearity = opt("tanh", "activation of the rnn cell (rnn only)")
    seed: int = opt(0, "random seed")
    device: Device = opt("auto", "where to run: auto = cuda > mps > cpu")
    every: int = opt(50, "print every N epochs (and the first and the last)")
    threads: int | None = opt(
        None, "CPU threads (default: OMP_NUM_THREADS if set, else 1: a tiny model's step)"
    )

    def __post_init__(self) -> None:
        all_finite(self)
        check_seed(f"{flag('seed')}", self.seed)
        check_choices(self)
        if self.threads is not None:
            at_least("threads", self.threads, 1)
        at_least("epochs", self.epochs, 1)
        at_least("every", self.every, 1)
        at_least("num_layers", self.num_layers, 1)
        if self.hidden_size is not None:  # 0 is a mistake, not "the default"
            at_least("hidden_size", self.hidden_size, 1)
        if not self.lr > 0:
            raise NextcharError(f"lr must be > 0, got {self.lr}")
        if len(self.sentence) < 2:
            raise NextcharError(
                f"the sentence needs at least 2 characters (input = all but the last, target = "
                f"all but the first); got {len(self.sentence)}: {self.sentence!r}"
            )
