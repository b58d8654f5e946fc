"""Command line: argument parsing and printing only. Each command maps its flags onto a config
dataclass and calls one library function; errors become one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from nextchar import __version__
from nextchar.config import (
    CELLS,
    GPT2_LEVEL,
    MODEL_KINDS,
    TOKENIZERS,
    WORD_LEVEL,
    ModelConfig,
    SampleConfig,
    TrainConfig,
)
from nextchar.errors import NextcharError
from nextchar.runtime import DEVICE_CHOICES

if typing.TYPE_CHECKING:
    from nextchar.generate import Prediction
    from nextchar.tokenizers import Tokenizer


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (plus where to look), not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ----------------------------------------------------------------------------- lab


def _add_lab(sub: argparse._SubParsersAction) -> None:
    from nextchar.lab import LAB_SENTENCE, LabConfig

    d = LabConfig()
    p = sub.add_parser(
        "lab",
        help="the classroom lab: learn to predict one sentence",
        description="Train nn.RNN/LSTM/GRU with one-hot inputs on one sentence "
        "and watch the prediction become the sentence (the lab, faithfully).",
    )
    p.add_argument("--cell", choices=CELLS, default=d.cell, help="recurrent cell (default: rnn)")
    p.add_argument(
        "--sentence",
        default=LAB_SENTENCE,
        help=f"text to learn, any Unicode (default: {LAB_SENTENCE!r})",
    )
    p.add_argument("--epochs", type=int, default=d.epochs, help="full-batch epochs (default: 500)")
    p.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate (default: 1e-3)")
    p.add_argument(
        "--hidden-size",
        type=int,
        default=None,
        help="hidden units (default: the vocabulary size, as in the notes)",
    )
    p.add_argument("--num-layers", type=int, default=d.num_layers, help="stacked layers")
    p.add_argument(
        "--nonlinearity",
        choices=("tanh", "relu"),
        default=d.nonlinearity,
        help="activation of the rnn cell (rnn only; default: tanh)",
    )
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (default: 0)")
    p.add_argument(
        "--device",
        choices=DEVICE_CHOICES,
        default="auto",
        help="where to run (default: auto = cuda > mps > cpu)",
    )
    p.add_argument("--every", type=int, default=d.every, help="print every N epochs (default: 50)")
    p.set_defaults(run=_run_lab)


def _run_lab(args: argparse.Namespace) -> int:
    from nextchar.lab import LabConfig, LabStep, prepare_lab, train_lab

    config = LabConfig(
        sentence=args.sentence,
        cell=args.cell,
        epochs=args.epochs,
        lr=args.lr,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        nonlinearity=args.nonlinearity,
        seed=args.seed,
        device=args.device,
        every=args.every,
    )
    lab = prepare_lab(config)  # every input error surfaces here, before any output
    mc, vocab = lab.model.config, lab.tokenizer.vocab
    layers = f", num_layers={mc.num_layers}" if mc.num_layers > 1 else ""
    # torch's own repr shows the nonlinearity only when it is not the default, and so do we
    layers += f", nonlinearity={mc.nonlinearity!r}" if mc.nonlinearity != "tanh" else ""
    print(
        f"model : nn.{mc.cell.upper()}(input_size={mc.input_size}, "
        f"hidden_size={mc.hidden_size}{layers}, batch_first=True) + "
        f"nn.Linear({mc.hidden_size}, {mc.vocab_size}); one-hot input; "
        f"Adam lr {config.lr:g}; {config.epochs} epochs; seed {config.seed}; {lab.device}"
    )
    print(f"vocab : {len(vocab)} characters in code point order: {''.join(vocab)!r}")
    print(f"input : {config.sentence[:-1]!r}\ntarget: {lab.target!r}\n", flush=True)
    width = len(str(config.epochs - 1))

    def show(step: LabStep) -> None:
        print(
            f"epoch {step.epoch:>{width}}  loss : {step.loss:.6f} prediction : {step.prediction}",
            flush=True,
        )

    result = train_lab(lab, on_step=show)
    print()
    if result.first_match_epoch is None:
        print(
            f"result: the prediction never equalled the target in {config.epochs} epochs; "
            f"try --epochs {config.epochs * 2}"
        )
    else:
        print(
            f"result: the prediction first equalled the target at epoch {result.first_match_epoch}"
        )
    status = "equals" if result.converged else "does not equal"
    print(f"final : {result.final_prediction}   ({status} the target)")
    print(f"time  : {result.seconds:.2f} s on {result.device}")
    return 0


# ----------------------------------------------------------------------------- shapes


def _add_shapes(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "shapes",
        help="explain input/output/state/weight shapes of nn.RNN/LSTM/GRU",
        description="Build the real torch module, run it on a random input and "
        "print every shape in the notation of the PyTorch docs.",
    )
    p.add_argument("--cell", choices=CELLS, default="rnn", help="module (default: rnn)")
    p.add_argument("--input-size", type=int, default=4, help="H_in (default: 4)")
    p.add_argument("--hidden-size", type=int, default=2, help="hidden_size (default: 2)")
    p.add_argument("--num-layers", type=int, default=1, help="stacked layers (default: 1)")
    p.add_argument("--bidirectional", action="store_true", help="D = 2")
    p.add_argument("--proj-size", type=int, default=0, help="LSTM projection size (default: 0)")
    order = p.add_mutually_exclusive_group()
    order.add_argument(
        "--batch-first",
        dest="batch_first",
        action="store_true",
        default=True,
        help="input/output as (N, L, H) (default)",
    )
    order.add_argument(
        "--seq-first",
        dest="batch_first",
        action="store_false",
        help="input/output as (L, N, H), torch's own default",
    )
    p.add_argument("--batch", type=int, default=1, help="N, the batch size (default: 1)")
    p.add_argument("--seq-len", type=int, default=5, help="L, the sequence length (default: 5)")
    p.add_argument("--unbatched", action="store_true", help="no batch dimension at all")
    p.set_defaults(run=_run_shapes)


def _run_shapes(args: argparse.Namespace) -> int:
    from nextchar.shapes import ShapeArgs, render

    print(
        render(
            ShapeArgs(
                cell=args.cell,
                input_size=args.input_size,
                hidden_size=args.hidden_size,
                num_layers=args.num_layers,
                bidirectional=args.bidirectional,
                proj_size=args.proj_size,
                batch_first=args.batch_first,
                batch=args.batch,
                seq_len=args.seq_len,
                unbatched=args.unbatched,
            )
        ),
        end="",
    )
    return 0


# ----------------------------------------------------------------------------- train

# Flags for config fields: help text here, defaults from the dataclasses (one source of truth).
_MODEL_HELP = {
    "kind": "recurrent (RNN/LSTM/GRU) or gpt2 (a transformer, via HuggingFace transformers)",
    "init": "gpt2: fine-tune this pretrained GPT-2 (hub name or save_pretrained directory)",
    "n_layer": "gpt2 from scratch: transformer blocks",
    "n_head": "gpt2 from scratch: attention heads",
    "n_embd": "gpt2 from scratch: width",
    "block_size": "gpt2 from scratch: context length in tokens",
    "cell": "recurrent cell",
    "hidden_size": "hidden units per layer",
    "num_layers": "stacked recurrent layers",
    "input": "input encoding: embedding (fast) or onehot (the lab's)",
    "embedding_dim": "embedding width (None: the hidden size)",
    "dropout": "dropout between layers and before the output layer",
    "proj_size": "LSTM projection size (0 = off)",
    "tie_weights": "share the embedding with the output layer (needs embedding dim = H_out)",
}
_TRAIN_HELP = {
    "val_file": "validation text (default: the last --val-fraction of the training text)",
    "val_fraction": "share of the text held out for validation when no --val-file is given",
    "encoding": "text encoding of the files",
    "errors": "invalid bytes: strict (error naming file and offset) or replace (U+FFFD)",
    "tokenizer": "char (one id per character), byte (UTF-8 bytes, vocabulary 256), word, or "
    "bpe (byte-level BPE learned from the text; --vocab-size)",
    "normalization": "nfc (Hangul syllables whole), nfd (jamo), none (text as is)",
    "unk": "reserve U+FFFD for characters unseen in training (eval then counts them)",
    "min_freq": "word level: words seen fewer times share the <unk> id",
    "max_vocab": "word level: keep at most this many words, most frequent first (with <unk>)",
    "word_split": "word level: unicode (words and punctuation apart) or whitespace",
    "lowercase": "word level: fold case before counting and reading words",
    "embeddings": "initialise the input embedding: 'word2vec' (trained with gensim on the "
    "training text) or a vectors file (word2vec text/binary, GloVe, gensim KeyedVectors)",
    "freeze_embeddings": "keep the initialised embedding fixed instead of fine-tuning it",
    "w2v_algorithm": "word2vec: skipgram or cbow",
    "w2v_window": "word2vec: context window (words each side)",
    "w2v_epochs": "word2vec: passes over the training text",
    "bpe_vocab": "--tokenizer bpe: size of the byte-level BPE vocabulary learned from the text",
    "batch_size": "B: parallel streams per batch",
    "seq_len": "T: characters per window (back-propagation through time length)",
    "batching": "streams (state carried across windows) or random windows",
    "optimizer": "adam or adamw",
    "lr": "peak learning rate",
    "min_lr_ratio": "the schedule decays to lr times this",
    "warmup_steps": "linear warm-up steps",
    "schedule": "cosine, constant or step",
    "step_every": "schedule step: decay every N steps",
    "step_gamma": "schedule step: decay factor",
    "weight_decay": "AdamW weight decay (matrices only)",
    "grad_clip": "clip the global gradient norm to this (0 = off)",
    "max_steps": "stop after this many optimizer steps",
    "max_time": "stop after this much wall-clock time: seconds, or 90s / 8m / 1.5h (without "
    "--max-steps: no step cap, and the learning-rate schedule follows the clock)",
    "eval_every": "evaluate on validation every N steps (and save last/best)",
    "eval_tokens": "validation tokens per periodic evaluation (the final one uses all)",
    "log_every": "write a metrics line every N steps",
    "seed": "random seed",
    "device": "auto (cuda > mps > cpu), cpu, cuda or mps",
    "precision": "auto (bf16 autocast for GPT-2 on CUDA; fp32 for recurrent models, whose "
    "cuDNN kernels use TF32, and on CPUs), fp32 or bf16 (on a CPU fast only with AMX)",
    "compile": "torch.compile the model for training (it compiles first: 10-25 s measured)",
}
_CHOICES = {
    "kind": MODEL_KINDS,
    "cell": CELLS,
    "input": ("onehot", "embedding"),
    "errors": ("strict", "replace"),
    "tokenizer": TOKENIZERS,
    "word_split": ("unicode", "whitespace"),
    "w2v_algorithm": ("skipgram", "cbow"),
    "normalization": ("nfc", "nfd", "none"),
    "batching": ("streams", "random"),
    "optimizer": ("adam", "adamw"),
    "schedule": ("cosine", "constant", "step"),
    "device": DEVICE_CHOICES,
    "precision": ("auto", "fp32", "bf16"),
}


_ALIASES = {"embedding_dim": ("--emb-dim",)}
_FLAGS = {"kind": "--model", "bpe_vocab": "--vocab-size"}  # where the flag is not the field


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


def _add_config_flags(p: argparse.ArgumentParser, cls: type, helps: dict[str, str]) -> None:
    hints = typing.get_type_hints(cls)
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    for name, help_text in helps.items():
        flag = _FLAGS.get(name, "--" + name.replace("_", "-"))
        default, hint = defaults[name], hints[name]
        shown = f"{help_text} (default: {default})"
        if hint is bool:
            p.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=f"{help_text} (default: {'on' if default else 'off'})",
            )
            continue
        base = next((t for t in (int, float, str) if t == hint or t in typing.get_args(hint)), str)
        kind = parse_duration if name == "max_time" else base
        metavar = None if name in _CHOICES else name.split("_")[-1].upper()
        if name == "embeddings":
            metavar = "word2vec|PATH"
        p.add_argument(
            flag,
            *_ALIASES.get(name, ()),
            dest=name,
            type=kind,
            choices=_CHOICES.get(name),
            default=argparse.SUPPRESS,
            help=shown,
            metavar=metavar,
        )


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a character, word or BPE language model (RNN/LSTM/GRU or GPT-2) on text",
        description="Train an RNN/LSTM/GRU (or, with --model gpt2, a GPT-2) language model on "
        "text, one character, word or BPE token at a time; reports validation bits per "
        "character and writes checkpoints to a run directory.",
    )
    p.add_argument("files", nargs="*", help="training text: files or directories")
    p.add_argument(
        "--out", help="run directory (default: runs/<first file's name>, numbered if taken)"
    )
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue this run from its last "
        "checkpoint (files, model and settings come from the run)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--level",
        choices=("char", "word"),
        help="predict characters (default) or words; --level word is --tokenizer word and "
        "starts from the word-level defaults (LSTM 1x256, embedding 128, dropout 0.3, batch "
        "32x32, lr 3e-3, 1000 steps) instead of the character ones shown below",
    )
    _add_config_flags(p, ModelConfig, _MODEL_HELP)
    _add_config_flags(p, TrainConfig, _TRAIN_HELP)
    p.set_defaults(run=_run_train)


def _default_run_dir(files: list[str]) -> Path:
    stem = Path(files[0]).stem or "run"
    candidate, n = Path("runs") / stem, 1
    while candidate.exists():
        n += 1
        candidate = Path("runs") / f"{stem}-{n}"
    return candidate


def _run_train(args: argparse.Namespace) -> int:
    from nextchar.distributed import from_env
    from nextchar.train import RESUME_OVERRIDES, resume_config, train

    given = vars(args)
    model_kw = {k: given[k] for k in _MODEL_HELP if k in given}
    train_kw = {k: given[k] for k in _TRAIN_HELP if k in given}
    if args.level is not None:
        tokenizer = train_kw.get("tokenizer")
        if tokenizer is not None and (tokenizer == "word") != (args.level == "word"):
            raise NextcharError(
                f"--level {args.level} contradicts --tokenizer {tokenizer}; give one of them"
            )
        if args.level == "word":
            train_kw["tokenizer"] = "word"
    time_only = "max_time" in train_kw and "max_steps" not in train_kw
    if model_kw.get("kind") == "gpt2" and not args.resume:
        # GPT-2 and word level start from their own defaults; flags given explicitly win
        model_kw = {**GPT2_LEVEL["model"], **model_kw}
        train_kw = {**GPT2_LEVEL["train"], **train_kw}
    elif train_kw.get("tokenizer") == "word" and not args.resume:
        model_kw = {**WORD_LEVEL["model"], **model_kw}
        train_kw = {**WORD_LEVEL["train"], **train_kw}
    if time_only and not args.resume:
        # `--max-time 3m` alone is a time budget: no step cap, and the schedule follows the clock
        train_kw["max_steps"] = None
    if args.resume:
        if args.files or model_kw or set(train_kw) - set(RESUME_OVERRIDES):
            flags = ", ".join("--" + name.replace("_", "-") for name in RESUME_OVERRIDES)
            raise NextcharError(
                f"--resume continues a run with its own files and settings; only {flags} "
                "may be given with it"
            )
        model_config, config = resume_config(args.resume, **train_kw)
        run_dir = Path(args.resume)
    else:
        if not args.files:
            raise NextcharError("give the training text: nextchar train FILE [FILE...]")
        model_config = ModelConfig(**model_kw)
        config = TrainConfig(files=tuple(args.files), **train_kw)
        run_dir = Path(args.out) if args.out else _default_run_dir(args.files)
    main_process = from_env().is_main  # under torchrun, rank 0 alone reports
    result = train(
        model_config,
        config,
        run_dir,
        resume=bool(args.resume),
        progress=not args.quiet and main_process,
        log=lambda line: print(line, flush=True) if main_process else None,
    )
    if not main_process:
        return 130 if result.interrupted else 0
    status = "interrupted" if result.interrupted else "done"
    print(
        f"{status}: {result.step} steps in {result.seconds:.0f} s, "
        f"{result.chars_per_second:,.0f} characters/s, {result.parameters:,} parameters"
    )
    if result.interrupted:
        print(f"saved {run_dir / 'last'}; continue with: nextchar train --resume {run_dir}")
        return 130
    print(
        f"validation: best {result.final_val_bpc:.4f} bits per character, perplexity "
        f"{result.final_val_perplexity:.2f} per {result.unit} (whole validation text, best "
        "checkpoint)"
    )
    print(f"run directory: {run_dir}  (best/, last/, metrics.jsonl, curves.png)")
    print(f"next: nextchar sample {run_dir} --length 300")
    return 0


# ----------------------------------------------------------------------------- sample / predict

_MODEL_ARG_HELP = (
    "checkpoint or run directory, a file from `nextchar export` (.onnx), or a GPT-2 "
    "(name such as gpt2, or directory)"
)


def _add_sample(sub: argparse._SubParsersAction) -> None:
    d = SampleConfig()
    p = sub.add_parser(
        "sample",
        help="generate text from a checkpoint, streamed",
        description="Generate text from a trained model; the prime is run once "
        "and each new character costs one recurrent step.",
    )
    p.add_argument(
        "checkpoint",
        help=_MODEL_ARG_HELP,
    )
    p.add_argument(
        "--prime",
        default=None,
        help="text to start from (default: a newline, if the model knows one)",
    )
    p.add_argument("--length", type=int, default=d.length, help="tokens to generate")
    p.add_argument(
        "--temperature",
        type=float,
        default=d.temperature,
        help="softmax temperature, > 0 (default: 1.0)",
    )
    p.add_argument("--top-k", type=int, default=None, help="sample from the k most likely only")
    p.add_argument(
        "--top-p",
        type=float,
        default=None,
        help="sample from the smallest set with this much probability (nucleus)",
    )
    p.add_argument("--greedy", action="store_true", help="always take the most likely token")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (default: 0)")
    p.add_argument("--num-samples", type=int, default=d.num_samples, help="how many samples")
    p.add_argument(
        "--repetition-penalty",
        type=float,
        default=d.repetition_penalty,
        help="divide the scores of tokens already in the text by this (1 = off; 1.2 is usual)",
    )
    p.add_argument(
        "--num-beams",
        type=int,
        default=d.num_beams,
        help="GPT-2: beam search with this many beams (deterministic, printed at the end)",
    )
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="where to run")
    p.set_defaults(run=_run_sample)


def _run_sample(args: argparse.Namespace) -> int:
    from nextchar.checkpoint import load
    from nextchar.generate import sample_texts

    config = SampleConfig(
        length=args.length,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        greedy=args.greedy,
        seed=args.seed,
        num_samples=args.num_samples,
        repetition_penalty=args.repetition_penalty,
        num_beams=args.num_beams,
    )
    model, tokenizer = load(args.checkpoint, args.device)
    prime = args.prime
    if prime is None:  # a newline starts a fresh line; a text without one gets its first symbol
        prime = "\n" if tokenizer.count_unknown("\n") == 0 else tokenizer.decode([0])
    tokenizer.encode(prime)  # unknown characters: one clear error before any output
    current = -1
    for index, piece in sample_texts(model, tokenizer, prime, config):
        if index != current:
            if index:
                print()
            if config.num_samples > 1:
                print(f"--- sample {index + 1} ---")
            print(prime, end="")
            current = index
        print(piece, end="", flush=True)
    print()
    return 0


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="show the most likely next characters after a text",
        description="Print the top-k next characters (tokens) with their "
        "probabilities as a bar chart, and the entropy in bits.",
    )
    p.add_argument(
        "checkpoint",
        help=_MODEL_ARG_HELP,
    )
    p.add_argument("text", help="the text so far")
    p.add_argument("--top-k", type=int, default=10, help="how many candidates (default: 10)")
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="where to run")
    p.set_defaults(run=_run_predict)


def _shown(token: str) -> str:
    """A token as printed in a table: words and characters as they are; whitespace and
    control characters quoted, so a space or newline is visible."""
    return token if token.isprintable() and token.strip() == token and token else repr(token)


def _run_predict(args: argparse.Namespace) -> int:
    from nextchar.checkpoint import load
    from nextchar.generate import predict_next

    model, tokenizer = load(args.checkpoint, args.device)
    _print_prediction(predict_next(model, tokenizer, args.text, args.top_k), tokenizer, args.text)
    return 0


def _print_prediction(prediction: Prediction, tokenizer: Tokenizer, text: str) -> None:
    unknown = tokenizer.count_unknown(text)
    if unknown:
        print(
            f"note: {unknown} {tokenizer.unit}(s) of the text are not in the vocabulary "
            "and are read as unknown"
        )
    print(
        f"after {text[-40:]!r}: entropy {prediction.entropy_bits:.2f} bits "
        f"over {tokenizer.vocab_size:,} {tokenizer.unit}s"
    )
    width = max(len(_shown(t)) for t, _ in prediction.candidates)
    top = prediction.candidates[0][1]
    for token, p in prediction.candidates:
        bar = "█" * round(30 * p / top) or "▏"
        print(f"  {_shown(token):>{width}}  {p:6.1%}  {bar}")


# ----------------------------------------------------------------------------- serve / chat


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="a web page that shows the model think (next-token bars, cells, surprise)",
        description="Serve one or more models on a local web page: live next-token "
        "probabilities as you type, streamed continuations, hidden-unit heatmaps and per-"
        "character surprise; JSON API under /api/ (documented at /docs).",
    )
    p.add_argument("checkpoints", nargs="+", metavar="CKPT", help=_MODEL_ARG_HELP)
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: 127.0.0.1, this machine only; 0.0.0.0 opens it to "
        "the network)",
    )
    p.add_argument("--port", type=int, default=8000, help="port, 1-65535 (default: 8000)")
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests whose Host header is NAME (repeatable); loopback names and "
        "IP addresses are always accepted, other names are refused (DNS rebinding)",
    )
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="where to run")
    p.set_defaults(run=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    from nextchar.serve import serve

    serve(args.checkpoints, args.host, args.port, args.device, args.allowed_host)
    return 0


def _add_chat(sub: argparse._SubParsersAction) -> None:
    d = SampleConfig()
    p = sub.add_parser(
        "chat",
        help="the terminal version of serve: type a prefix, see the next tokens and a sample",
        description="Type a prefix; see the most likely next tokens and a sampled "
        "continuation. Lines starting with ':' change settings (:temperature 0.5, :top-k 20, "
        ":length 100, :seed 1, :greedy, :help, :quit). '\\n' in a line is a newline.",
    )
    p.add_argument("checkpoint", help=_MODEL_ARG_HELP)
    p.add_argument("--top", type=int, default=5, help="next tokens shown (default: 5)")
    p.add_argument("--length", type=int, default=120, help="tokens per continuation")
    p.add_argument("--temperature", type=float, default=0.8, help="softmax temperature")
    p.add_argument("--top-k", type=int, default=None, help="sample from the k most likely only")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (default: 0)")
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="where to run")
    p.set_defaults(run=_run_chat)


_CHAT_SETTINGS = {"temperature": float, "top_k": int, "length": int, "seed": int}
_CHAT_HELP = (
    "settings: :temperature X, :top-k N|off, :length N, :seed N, :greedy (toggles), "
    ":help, :quit; a typed \\n is a newline"
)


def _chat_setting(config: SampleConfig, line: str) -> SampleConfig:
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


def _line_reader(model: typing.Any, tokenizer: Tokenizer, top: int) -> Callable[[], str]:
    """input() for pipes; on a terminal with prompt_toolkit, a prompt whose bottom bar shows
    the most likely next tokens while you type, updated on every keystroke."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return lambda: input("> ")
    try:
        from prompt_toolkit import PromptSession
    except ImportError:
        return lambda: input("> ")
    from nextchar.generate import predict_next

    session: typing.Any = PromptSession()
    shown: dict[str, str] = {}  # the bar for the text it was computed for

    def toolbar() -> str:
        text = session.default_buffer.text.replace("\\n", "\n")
        if not text or text.startswith(":"):
            return " type a prefix: the most likely next tokens show here as you type"
        if text not in shown:
            try:
                prediction = predict_next(model, tokenizer, text, top)
                bar = "   ".join(f"{_shown(t)} {p:.0%}" for t, p in prediction.candidates)
                line = f" next: {bar}   ({prediction.entropy_bits:.1f} bits)"
            except NextcharError as exc:
                line = f" {exc}"
            shown.clear()
            shown[text] = line
        return shown[text]

    return lambda: session.prompt("> ", bottom_toolbar=toolbar)


def _run_chat(args: argparse.Namespace) -> int:
    from nextchar.checkpoint import load
    from nextchar.generate import predict_next, sample_texts
    from nextchar.models import describe
    from nextchar.serve import MAX_TEXT

    config = SampleConfig(  # bad flags: one error before the prompt
        length=args.length, temperature=args.temperature, top_k=args.top_k, seed=args.seed
    )
    if args.top < 1:
        raise NextcharError(f"--top must be >= 1 (next tokens shown), got {args.top}")
    model, tokenizer = load(args.checkpoint, args.device)
    tty = sys.stdout.isatty()
    dim, bold, reset = ("\033[2m", "\033[1m", "\033[0m") if tty else ("", "", "")
    print(f"{describe(model.config)}: type a prefix (':help' for settings; ':quit' or Ctrl-D ends)")
    read_line = _line_reader(model, tokenizer, args.top)
    while True:
        try:
            line = read_line()
        except EOFError:
            print()
            return 0
        if line.strip() in (":quit", ":q", ":exit"):
            return 0
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
                config = _chat_setting(config, line)
                print(
                    f"{dim}temperature {config.temperature}, top-k {config.top_k or 'off'}, "
                    f"length {config.length}, seed {config.seed}, greedy {config.greedy}{reset}"
                )
                continue
            text = line.replace("\\n", "\n")  # a typed \n is a newline
            if not text:
                continue
            _print_prediction(predict_next(model, tokenizer, text, args.top), tokenizer, text)
            print(f"{dim}{text}{reset}{bold}", end="", flush=True)
            for _, piece in sample_texts(model, tokenizer, text, config):
                print(piece, end="", flush=True)
            print(reset)
        except NextcharError as exc:
            print(f"{reset}error: {exc}")


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a checkpoint to ONNX (state as explicit inputs and outputs)",
        description="Write an RNN/LSTM/GRU checkpoint as one ONNX file: inputs ids [B, T] and "
        "the state (h, and c for LSTM), outputs logits and the new state; batch and sequence "
        "axes are dynamic. The tokenizer travels inside the file, so `nextchar sample OUT.onnx` "
        "and onnxruntime alone can use it.",
    )
    p.add_argument("checkpoint", help="checkpoint or run directory")
    p.add_argument("out", help="the .onnx file to write")
    p.add_argument("--format", choices=("onnx",), default="onnx", help="export format")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset, 7-20 (default: 17)")
    p.set_defaults(run=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from nextchar.export import export_onnx, load_onnx

    out = export_onnx(args.checkpoint, args.out, args.opset)
    model, _ = load_onnx(out)
    names = ", ".join(model.names)
    print(
        f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, opset {args.opset}): "
        f"ids [batch, sequence] + state {names} -> logits + new state"
    )
    print(f"next: nextchar sample {out} --length 300")
    return 0


def _add_neighbors(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "neighbors",
        help="nearest words (or characters) by cosine similarity of the model's embedding",
        description="List the vocabulary entries whose input-embedding rows are closest to "
        "WORD's by cosine similarity. One-hot vectors cannot do this: every pair of distinct "
        "words is equally far apart (cosine 0).",
    )
    p.add_argument("checkpoint", help="checkpoint or run directory")
    p.add_argument("word", help="a word (or character) in the model's vocabulary")
    p.add_argument("--top-k", type=int, default=10, help="how many neighbours (default: 10)")
    p.set_defaults(run=_run_neighbors)


def _run_neighbors(args: argparse.Namespace) -> int:
    from nextchar.checkpoint import load
    from nextchar.embeddings import nearest

    model, tokenizer = load(args.checkpoint, "cpu")
    result = nearest(model, tokenizer, args.word, args.top_k)
    print(f"nearest to {_shown(result.word)} (cosine similarity of input embeddings):")
    width = max(len(_shown(w)) for w, _ in result.neighbours)
    for word, similarity in result.neighbours:
        bar = "█" * max(0, round(20 * similarity)) or "▏"
        print(f"  {_shown(word):<{width}}  {similarity:+.3f}  {bar}")
    print(f"(one-hot input: every other {tokenizer.unit} would be at cosine 0)")
    return 0


def _add_tokens(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tokens",
        help="how a model's tokenizer cuts a text: tokens per character, byte pieces, unknowns",
        description="A tokenization report: vocabulary size, tokens per character, byte-"
        "fallback and unknown rates, the most frequent and the longest tokens, and a warning "
        "when the text is a poor fit for the tokenizer.",
    )
    p.add_argument("model", help=_MODEL_ARG_HELP)
    p.add_argument("files", nargs="+", help="text files or directories")
    p.add_argument("--encoding", default="utf-8", help="text encoding (default: utf-8)")
    p.add_argument("--top", type=int, default=10, help="tokens listed (default: 10)")
    p.set_defaults(run=_run_tokens)


def _run_tokens(args: argparse.Namespace) -> int:
    from nextchar.checkpoint import load_tokenizer
    from nextchar.data import read_text
    from nextchar.tokenizers import token_report

    if args.top < 1:
        raise NextcharError(f"--top must be >= 1, got {args.top}")
    tokenizer = load_tokenizer(args.model)
    for path in args.files:
        r = token_report(tokenizer, read_text(path, args.encoding), args.top)
        print(f"{path}: {r.chars:,} characters -> {r.tokens:,} {r.unit}s")
        print(f"  vocabulary        {r.vocab_size:,} {r.unit}s ({r.distinct:,} used here)")
        print(f"  per character     {r.tokens_per_char:.3f} {r.unit}s")
        print(f"  byte pieces       {r.partial:,} ({r.partial / max(1, r.tokens):.1%} of tokens)")
        print(f"  unknown           {r.unknown:,} ({r.unknown / max(1, r.tokens):.1%})")
        frequent = "  ".join(f"{_shown(t)} {n:,}" for t, n in r.most_frequent)
        print(f"  most frequent     {frequent}")
        print(f"  longest           {'  '.join(_shown(t) for t in r.longest)}")
        for warning in r.warnings():
            print(f"  warning: {warning}")
    return 0


def _add_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="compare models of any kind on one text in bits per character (table + chart)",
        description="Evaluate several models (character, word, BPE, GPT-2 ...) on one text "
        "and print one table: bits per character, parameters, evaluation speed; also writes "
        "a bar chart.",
    )
    p.add_argument("file", help="the text to evaluate on (file or directory)")
    p.add_argument(
        "models", nargs="+", help="checkpoints, run directories, exported .onnx files or GPT-2s"
    )
    p.add_argument("--out", default="compare.png", help="bar chart (default: compare.png)")
    p.add_argument("--stride", type=int, default=None, help="GPT-2 sliding-window stride")
    p.add_argument("--encoding", default="utf-8", help="text encoding (default: utf-8)")
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="where to run")
    p.add_argument("--json", action="store_true", help="print one JSON object per model")
    p.set_defaults(run=_run_compare)


def _run_compare(args: argparse.Namespace) -> int:
    import json

    from nextchar.compare import check_chart_path, compare, plot, table
    from nextchar.data import read_text

    check_chart_path(Path(args.out))
    text = read_text(args.file, args.encoding)
    rows = compare(args.models, text, args.device, args.stride)
    if args.json:
        for r in rows:
            print(
                json.dumps(
                    {
                        "model": r.name,
                        "kind": r.model,
                        "tokenizer": r.tokenizer,
                        "parameters": r.parameters,
                        "bits_per_char": r.result.bits_per_char,
                        "perplexity": r.result.perplexity,
                        "tokens": r.result.tokens,
                        "chars": r.result.chars,
                        "seconds": r.seconds,
                    }
                )
            )
    else:
        print(f"{args.file}: {len(text):,} characters\n")
        print(table(rows), end="")
    path = plot(rows, Path(args.out), f"{Path(args.file).name}: bits per character")
    if not args.json:
        print(f"\nchart: {path}")
    return 0


# ----------------------------------------------------------------------------- eval


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="measure a checkpoint on text: bits per character",
        description="Total NLL (nats), nats and bits per character, perplexity "
        "per token and next-token accuracy; the state is carried across the text.",
    )
    p.add_argument("checkpoint", help=_MODEL_ARG_HELP)
    p.add_argument("files", nargs="+", help="text files or directories to evaluate")
    p.add_argument("--encoding", default="utf-8", help="text encoding (default: utf-8)")
    p.add_argument(
        "--errors",
        choices=("strict", "replace"),
        default="strict",
        help="invalid bytes: strict (error) or replace (U+FFFD)",
    )
    p.add_argument("--batch-size", type=int, default=16, help="parallel streams (default: 16)")
    p.add_argument("--seq-len", type=int, default=256, help="window length (default: 256)")
    p.add_argument(
        "--stride",
        type=int,
        default=None,
        help="GPT-2: tokens the sliding window moves by; each token is predicted with at "
        "least context - stride tokens before it (default: half the context)",
    )
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="where to run")
    p.add_argument("--json", action="store_true", help="print one JSON object per file")
    p.set_defaults(run=_run_eval)


def _run_eval(args: argparse.Namespace) -> int:
    import json

    from nextchar.checkpoint import load
    from nextchar.data import read_text
    from nextchar.evaluate import evaluate_text

    if args.batch_size < 1 or args.seq_len < 1:
        raise NextcharError("--batch-size and --seq-len must be >= 1")
    model, tokenizer = load(args.checkpoint, args.device)
    for path in args.files:
        text = read_text(path, args.encoding, args.errors)
        r = evaluate_text(
            model,
            tokenizer,
            text,
            args.batch_size,
            args.seq_len,
            progress=not args.json,
            stride=args.stride,
        )
        if args.json:
            print(
                json.dumps(
                    {
                        "file": path,
                        "nll_nats": r.nll,
                        "tokens": r.tokens,
                        "chars": r.chars,
                        "nats_per_char": r.nats_per_char,
                        "bits_per_char": r.bits_per_char,
                        "perplexity": r.perplexity,
                        "unit": tokenizer.unit,  # perplexity and accuracy are per unit
                        "accuracy": r.accuracy,
                        "unknown": r.unknown,  # units of the text outside the vocabulary
                    }
                )
            )
            continue
        print(f"{path}: {r.chars:,} characters predicted ({r.tokens:,} {tokenizer.unit}s)")
        print(f"  total NLL        {r.nll:,.1f} nats")
        print(f"  per character    {r.nats_per_char:.4f} nats = {r.bits_per_char:.4f} bits")
        unit = tokenizer.unit
        # perplexity is per token of this tokenizer; per character it is exp(nats per char)
        per_char = f", {math.exp(r.nats_per_char):.3f} per character" if unit != "character" else ""
        print(f"  perplexity       {r.perplexity:.3f} (per {unit}{per_char})")
        label = f"  next-{unit} acc."
        print(f"{label:<18} {r.accuracy:.1%}")
        if unit == "word":
            print(
                f"  unknown words    {r.unknown:,} of {r.tokens + 1:,} "
                f"({r.unknown / (r.tokens + 1):.1%}) read as <unk>: each costs the NLL of "
                "<unk>, not of spelling the word, and spaces are placed, not predicted, so a "
                "word model's bits per character are a lower bound (optimistic)"
            )
        elif getattr(tokenizer, "unk", False):
            print(f"  unknown chars    {r.unknown:,} mapped to U+FFFD (counted in the NLL)")
    return 0


# ----------------------------------------------------------------------------- experiment


def _add_experiment(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "experiment",
        help="experiments that explain recurrent networks",
        description="Experiments that explain recurrent networks.",
    )
    kinds = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", parser_class=_Parser)
    kinds.required = True
    lr = kinds.add_parser(
        "long-range",
        help="why LSTM: a plain RNN forgets, LSTM/GRU remember",
        description="Train rnn, lstm and gru with the same budget on tasks "
        "whose answer depends on a symbol D steps back; print accuracy per "
        "distance and plot it with the gradient that reaches back.",
    )
    preset = lr.add_mutually_exclusive_group()
    preset.add_argument(
        "--quick", action="store_true", help="the default: about 75 seconds on 2 CPU cores"
    )
    preset.add_argument(
        "--full",
        action="store_true",
        help="longer distances, more seeds and steps (a GPU or a long CPU run)",
    )
    lr.add_argument("--tasks", help="comma-separated: remember,brackets")
    lr.add_argument("--cells", help="comma-separated: rnn,lstm,gru")
    lr.add_argument("--distances", help="comma-separated distances, e.g. 2,5,10,20,40")
    lr.add_argument("--seeds", type=int, help="seeds per setting")
    lr.add_argument("--steps", type=int, help="training steps per model")
    lr.add_argument("--hidden-size", type=int, help="hidden units")
    lr.add_argument("--device", choices=DEVICE_CHOICES, help="where to run")
    lr.add_argument(
        "--out",
        default="runs/long-range",
        help="where to write JSON and plots (default: runs/long-range)",
    )
    lr.set_defaults(run=_run_long_range)


def _run_long_range(args: argparse.Namespace) -> int:
    from nextchar.experiments import long_range as exp

    overrides: dict[str, object] = {}
    if args.tasks:
        overrides["tasks"] = exp.parse_names(args.tasks)
    if args.cells:
        overrides["cells"] = exp.parse_names(args.cells)
    if args.distances:
        overrides["distances"] = exp.parse_ints(args.distances)
    for name in ("seeds", "steps", "hidden_size", "device"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    config = dataclasses.replace(exp.FULL if args.full else exp.QUICK, **overrides)

    def show(task: str, cell: str, distance: int, accs: list[float]) -> None:
        mean = sum(accs) / len(accs)
        print(f"  {task:<9} {cell:<5} D={distance:<4} accuracy {mean:6.1%}", flush=True)

    print(
        f"training {len(config.tasks) * len(config.cells) * len(config.distances)} settings "
        f"x {config.seeds} seeds, {config.steps} steps each (chance: remember 1/8, "
        f"brackets 1/4)",
        flush=True,
    )
    result = exp.run_long_range(config, on_result=show)
    print()
    print(exp.summary_table(result), end="")
    paths = exp.write_outputs(result, Path(args.out))
    print(f"{result.seconds:.0f} s; wrote {', '.join(str(p) for p in paths)}")
    return 0


# ----------------------------------------------------------------------------- main

COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    _add_lab,
    _add_shapes,
    _add_train,
    _add_sample,
    _add_predict,
    _add_neighbors,
    _add_tokens,
    _add_eval,
    _add_compare,
    _add_export,
    _add_serve,
    _add_chat,
    _add_experiment,
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nextchar", description="Next-character prediction with recurrent neural networks."
    )
    parser.add_argument("--version", action="version", version=f"nextchar {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except NextcharError as exc:
        print(f"nextchar {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nextchar {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `nextchar eval ... | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
