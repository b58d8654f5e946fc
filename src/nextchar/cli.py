"""Command line: argument parsing and printing only. Each command maps its flags onto a config
dataclass and calls one library function; errors become one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from nextchar import __version__
from nextchar.config import CELLS
from nextchar.errors import NextcharError
from nextchar.runtime import DEVICE_CHOICES


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


# ----------------------------------------------------------------------------- main

COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (_add_lab, _add_shapes)


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


if __name__ == "__main__":
    sys.exit(main())
