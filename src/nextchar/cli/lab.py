"""The classroom commands: `lab` (the notes' RNN, faithfully), `shapes` (the shapes of
nn.RNN/LSTM/GRU explained) and `experiment long-range` (why LSTM)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from nextchar.cli.common import Parser, Sub, add_device, add_fields, given
from nextchar.core.commands import LabConfig, ShapeConfig


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
    lr.add_argument(
        "--cells",
        help="comma-separated: rnn,lstm,gru,mingru,minlstm (default: rnn,lstm,gru; --full: all)",
    )
    lr.add_argument("--distances", help="comma-separated distances, e.g. 2,5,10,20,40")
    lr.add_argument("--seeds", type=int, help="seeds per setting")
    lr.add_argument("--steps", type=int, help="training steps per model")
    lr.add_argument("--hidden-size", type=int, help="hidden units")
    add_device(lr, default=None)
    lr.add_argument(
        "--out",
        default="runs/long-range",
        help="where to write JSON and plots (default: runs/long-range)",
    )
    lr.set_defaults(run=run_long_range)


def run_long_range(args: argparse.Namespace) -> int:
    from nextchar.classroom import long_range as exp

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
