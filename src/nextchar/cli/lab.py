"""The classroom commands: `lab` (the notes' RNN, faithfully), `shapes` (the shapes of
nn.RNN/LSTM/GRU explained) and `experiment long-range` (why LSTM)."""

from __future__ import annotations

import argparse
import dataclasses

from nextchar.cli.common import Parser, Sub, add_fields, given
from nextchar.core.commands import QUICK, LabConfig, LongRangeConfig, ShapeConfig


def add_lab(sub: Sub) -> None:
    p = sub.add_parser(
        "lab",
        help="the classroom lab: learn to predict one sentence",
        description="Train nn.RNN/LSTM/GRU with one-hot inputs on one sentence "
        "and watch the prediction become the sentence (the lab, faithfully).",
    )
    add_fields(p, LabConfig)
    p.set_defaults(run=run_lab)


def run_lab(args: argparse.Namespace) -> int:
    from nextchar.classroom.lab import LabStep, header_lines, prepare_lab, trace_line, train_lab

    config = LabConfig(**given(args, LabConfig))
    lab = prepare_lab(config)  # every input error surfaces here, before any output
    print("\n".join(header_lines(lab)), flush=True)

    def show(step: LabStep) -> None:
        print(trace_line(step, config.epochs), flush=True)

    result = train_lab(lab, on_step=show)
    print("\n" + "\n".join(result.verdict()))
    return 0


def add_shapes(sub: Sub) -> None:
    p = sub.add_parser(
        "shapes",
        help="explain input/output/state/weight shapes of nn.RNN/LSTM/GRU",
        description="Build the real torch module, run it on a random input and "
        "print every shape in the notation of the PyTorch docs.",
    )
    add_fields(p, ShapeConfig)
    p.set_defaults(run=run_shapes)


def run_shapes(args: argparse.Namespace) -> int:
    from nextchar.classroom.shapes import render

    print(render(ShapeConfig(**given(args, ShapeConfig))), end="")
    return 0


def add_experiment(sub: Sub) -> None:
    p = sub.add_parser(
        "experiment",
        help="experiments that explain recurrent networks",
        description="Experiments that explain recurrent networks.",
    )
    kinds = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", parser_class=Parser)
    kinds.required = True
    lr = kinds.add_parser(
        "long-range",
        help="why LSTM: a plain RNN forgets, LSTM/GRU remember",
        description="Train rnn, lstm and gru with the same budget on tasks "
        "whose answer depends on a symbol D steps back; print accuracy per "
        "distance and plot it with the gradient that reaches back.",
    )
    add_fields(lr, LongRangeConfig, defaults=dataclasses.asdict(QUICK))
    lr.set_defaults(run=run_long_range)


def run_long_range(args: argparse.Namespace) -> int:
    from nextchar.classroom import long_range as exp

    given_ = given(args, LongRangeConfig)
    preset = exp.FULL if given_.get("full") else exp.QUICK
    config = dataclasses.replace(preset, **given_)
    exp.check_fits(config)  # before the first line of output
    out = exp.output_dir(config)

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
    paths = exp.write_outputs(result, out)
    print(f"{result.seconds:.0f} s; wrote {', '.join(str(p) for p in paths)}")
    return 0
