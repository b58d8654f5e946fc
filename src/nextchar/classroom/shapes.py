"""Explains the tensor shapes of nn.RNN / nn.LSTM / nn.GRU in the notation of the PyTorch docs
and the lab notes (N, L, H_in, H_out, H_cell, D, num_layers): what each shape should be by the
formulas, next to what the real torch module produces on a random input."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn

from nextchar.core.commands import ShapeConfig
from nextchar.display import htmlview
from nextchar.models import allocating
from nextchar.models.recurrent import FUSED as CELL_MODULES

# Gates per cell: the input/hidden weights stack this many H_cell-sized blocks.
GATE_BLOCKS = {"rnn": 1, "lstm": 4, "gru": 3}
GATE_NAMES = {"rnn": "", "lstm": "i|f|g|o", "gru": "r|z|n"}
# Only nn.LSTM carries a cell state c beside h (and only it has proj_size).
HAS_CELL_STATE = {"rnn": False, "lstm": True, "gru": False}


@dataclass(frozen=True)
class ShapeRow:
    name: str
    notation: str  # e.g. "(N, L, H_in)"
    expected: tuple[int, ...]  # the notation evaluated with the given sizes
    actual: tuple[int, ...]  # what torch produced


def build_module(args: ShapeConfig) -> nn.RNNBase:
    kwargs: dict[str, object] = dict(
        input_size=args.input_size,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        bias=args.bias,
        batch_first=args.batch_first,
        bidirectional=args.bidirectional,
    )
    if args.proj_size:
        kwargs["proj_size"] = args.proj_size
    return CELL_MODULES[args.cell](**kwargs)


def module_repr(args: ShapeConfig) -> str:
    parts = [f"input_size={args.input_size}", f"hidden_size={args.hidden_size}"]
    if args.num_layers != 1:
        parts.append(f"num_layers={args.num_layers}")
    if args.batch_first:
        parts.append("batch_first=True")
    if args.bidirectional:
        parts.append("bidirectional=True")
    if args.proj_size:
        parts.append(f"proj_size={args.proj_size}")
    return f"nn.{CELL_MODULES[args.cell].__name__}({', '.join(parts)})"


def _sequence_rows(args: ShapeConfig) -> list[tuple[str, str, tuple[int, ...]]]:
    """(name, notation, expected shape) for the inputs and outputs of one call."""
    n, length, dh = args.batch, args.seq_len, args.d * args.h_out
    if args.unbatched:
        seq_notation, seq = "(L, {})", (length,)
        state_notation, state = "(D*num_layers, {})", (args.d * args.num_layers,)
    elif args.batch_first:
        seq_notation, seq = "(N, L, {})", (n, length)
        state_notation, state = "(D*num_layers, N, {})", (args.d * args.num_layers, n)
    else:
        seq_notation, seq = "(L, N, {})", (length, n)
        state_notation, state = "(D*num_layers, N, {})", (args.d * args.num_layers, n)
    rows = [
        ("input", seq_notation.format("H_in"), (*seq, args.input_size)),
        ("h_0", state_notation.format("H_out"), (*state, args.h_out)),
    ]
    if HAS_CELL_STATE[args.cell]:
        rows.append(("c_0", state_notation.format("H_cell"), (*state, args.hidden_size)))
    rows += [
        ("output", seq_notation.format("D*H_out"), (*seq, dh)),
        ("h_n", state_notation.format("H_out"), (*state, args.h_out)),
    ]
    if HAS_CELL_STATE[args.cell]:
        rows.append(("c_n", state_notation.format("H_cell"), (*state, args.hidden_size)))
    return rows


def _parameter_rows(args: ShapeConfig) -> list[tuple[str, str, tuple[int, ...]]]:
    gates = GATE_BLOCKS[args.cell]
    g = "" if gates == 1 else f"{gates}*"
    rows = []
    for layer in range(args.num_layers):
        layer_in, in_notation = (
            (args.input_size, "H_in") if layer == 0 else (args.d * args.h_out, "D*H_out")
        )
        for suffix in [""] + (["_reverse"] if args.bidirectional else []):
            k = f"l{layer}{suffix}"
            rows.append(
                (
                    f"weight_ih_{k}",
                    f"({g}H_cell, {in_notation})",
                    (gates * args.hidden_size, layer_in),
                )
            )
            rows.append(
                (f"weight_hh_{k}", f"({g}H_cell, H_out)", (gates * args.hidden_size, args.h_out))
            )
            if args.bias:
                rows.append((f"bias_ih_{k}", f"({g}H_cell,)", (gates * args.hidden_size,)))
                rows.append((f"bias_hh_{k}", f"({g}H_cell,)", (gates * args.hidden_size,)))
            if args.proj_size:
                rows.append((f"weight_hr_{k}", "(H_out, H_cell)", (args.h_out, args.hidden_size)))
    return rows


def explain(args: ShapeConfig) -> tuple[list[ShapeRow], list[ShapeRow]]:
    """Run the real module on a random input; return (sequence rows, parameter rows)."""
    expected = _sequence_rows(args)
    shapes = dict((name, shape) for name, _, shape in expected)
    # torch warns that oneDNN has no projected-LSTM kernel; irrelevant for a shape demo.
    with (
        allocating(
            "these shapes",
            ("input_size", "hidden_size", "batch", "seq_len"),
        ),
        torch.no_grad(),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", UserWarning)
        module = build_module(args)
        x = torch.randn(shapes["input"])
        h0 = torch.randn(shapes["h_0"])
        actual = {"input": x, "h_0": h0}
        if HAS_CELL_STATE[args.cell]:
            actual["c_0"] = torch.randn(shapes["c_0"])
            output, (h_n, actual["c_n"]) = module(x, (h0, actual["c_0"]))
        else:
            output, h_n = module(x, h0)
    actual.update({"output": output, "h_n": h_n})
    sequence = [
        ShapeRow(name, notation, shape, tuple(actual[name].shape))
        for name, notation, shape in expected
    ]
    parameters = dict(module.named_parameters())
    weights = [
        ShapeRow(name, notation, shape, tuple(parameters[name].shape))
        for name, notation, shape in _parameter_rows(args)
    ]
    missing = set(parameters) - {row.name for row in weights}
    if missing:  # a torch version with parameters we do not know: show them rather than hide
        weights += [
            ShapeRow(name, "?", (), tuple(parameters[name].shape)) for name in sorted(missing)
        ]
    return sequence, weights


def _fmt(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


@dataclass(frozen=True)
class ShapeTable:
    """The shapes of one module call. Printed, the text of `nextchar shapes`; in Jupyter, the
    same two tables in HTML."""

    args: ShapeConfig
    sequence: list[ShapeRow]
    weights: list[ShapeRow]

    def sizes(self) -> str:
        a = self.args
        return "  ".join(
            [
                f"N={a.batch}" if not a.unbatched else "unbatched (no N)",
                f"L={a.seq_len}",
                f"H_in={a.input_size}",
                f"H_cell={a.hidden_size}",
                f"H_out={a.h_out}" + (" (proj_size)" if a.proj_size else " (hidden_size)"),
                f"D={a.d}",
                f"num_layers={a.num_layers}",
            ]
        )

    def notes(self) -> list[str]:
        lines = []
        if not self.args.unbatched:
            lines.append(
                "batch_first applies to input and output only; h_0/h_n/c_0/c_n are "
                "always (D*num_layers, N, ...)."
            )
        if GATE_NAMES[self.args.cell]:
            lines.append(f"Gate blocks are stacked in the order {GATE_NAMES[self.args.cell]}.")
        return lines

    @staticmethod
    def _shown(r: ShapeRow) -> str:
        flag = "" if r.expected == r.actual or r.notation == "?" else "   (!) torch differs"
        return _fmt(r.actual) + flag

    def __str__(self) -> str:
        rows = self.sequence + self.weights
        lines = [module_repr(self.args), "  " + self.sizes(), ""]
        width = max(len(r.name) for r in rows) + 2
        nwidth = max(len(r.notation) for r in rows) + 2
        for title, part in (("tensor", self.sequence), ("parameter", self.weights)):
            lines.append(f"{title:<{width}}{'notation':<{nwidth}}shape")
            lines += [f"{r.name:<{width}}{r.notation:<{nwidth}}{self._shown(r)}" for r in part]
            lines.append("")
        return "\n".join(lines + self.notes()).rstrip() + "\n"

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        head = htmlview.pre(module_repr(self.args) + "\n  " + self.sizes())
        tables = "".join(
            htmlview.table(
                [title, "notation", "shape"],
                [[r.name, r.notation, self._shown(r)] for r in part],
            )
            for title, part in (("tensor", self.sequence), ("parameter", self.weights))
        )
        return head + tables + htmlview.pre("\n".join(self.notes()))


def shape_table(args: ShapeConfig) -> ShapeTable:
    return ShapeTable(args, *explain(args))


def render(args: ShapeConfig) -> str:
    """The explanation as text, one table for the call and one for the parameters."""
    return str(shape_table(args))
