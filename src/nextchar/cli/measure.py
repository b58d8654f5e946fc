"""Commands that measure or convert models: `eval`, `compare`, `export`."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from nextchar.cli.common import MODEL_ARG_HELP, Sub, add_device, add_fields, given
from nextchar.core.commands import EvalConfig, ExportConfig

# which of EvalConfig's options each command takes
EVAL = ("encoding", "errors", "batch_size", "seq_len", "stride", "dynamic", "dynamic_lr",
        "dynamic_decay", "json")  # fmt: skip
COMPARE = ("encoding", "errors", "stride", "dynamic", "dynamic_lr", "dynamic_decay", "json",
           "overwrite")  # fmt: skip


def add_eval(sub: Sub) -> None:
    p = sub.add_parser(
        "eval",
        help="measure a checkpoint on text: bits per character",
        description="Total NLL (nats), nats and bits per character, perplexity "
        "per token and next-token accuracy; the state is carried across the text.",
    )
    p.add_argument("checkpoint", help=MODEL_ARG_HELP)
    p.add_argument("files", nargs="+", help="text files or directories to evaluate")
    add_fields(p, EvalConfig, EVAL)
    add_device(p)
    p.set_defaults(run=run_eval)


def dynamic_config(options: EvalConfig) -> object:
    """The DynamicConfig the options ask for, or None without dynamic evaluation."""
    if not options.dynamic:
        return None
    from nextchar.inference.dynamic import DynamicConfig

    return DynamicConfig(**options.dynamic_options())


def run_eval(args: argparse.Namespace) -> int:
    import json

    from nextchar.inference.evaluate import evaluate_text
    from nextchar.models import load
    from nextchar.text.data import read_text

    options = EvalConfig(**given(args, EvalConfig))
    dynamic = dynamic_config(options)
    model, tokenizer = load(args.checkpoint, args.device)
    for path in args.files:
        text = read_text(path, options.encoding, options.errors)
        r = evaluate_text(
            model,
            tokenizer,
            text,
            options.batch_size,
            options.seq_len,
            progress=not options.json,
            stride=options.stride,
        )
        adapted = None
        if dynamic is not None:
            adapted = evaluate_text(
                model, tokenizer, text, progress=not options.json, dynamic=dynamic
            )
        if options.json:
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
                        "dynamic_bits_per_char": adapted and adapted.bits_per_char,
                    }
                )
            )
        else:
            _show_eval(path, r, tokenizer, adapted)
    return 0


def _show_eval(path: str, r: Any, tokenizer: Any, adapted: Any) -> None:
    print(f"{path}: {r.chars:,} characters predicted ({r.tokens:,} {tokenizer.unit}s)")
    print(f"  total NLL        {r.nll:,.1f} nats")
    print(f"  per character    {r.nats_per_char:.4f} nats = {r.bits_per_char:.4f} bits")
    unit = tokenizer.unit
    # perplexity is per token of this tokenizer; per character it is exp(nats per char)
    per_char = f", {math.exp(r.nats_per_char):.3f} per character" if unit != "character" else ""
    print(f"  perplexity       {r.perplexity:.3f} (per {unit}{per_char})")
    print(f"  accuracy         {r.accuracy:.1%} of next {unit}s")
    if unit == "word":
        print(
            f"  unknown words    {r.unknown:,} of {r.tokens + 1:,} "
            f"({r.unknown / (r.tokens + 1):.1%}) read as <unk>: each costs the NLL of "
            "<unk>, not of spelling the word, and spaces are placed, not predicted, so a "
            "word model's bits per character are a lower bound (optimistic)"
        )
    elif getattr(tokenizer, "unk", False):
        print(f"  unknown chars    {r.unknown:,} mapped to U+FFFD (counted in the NLL)")
    if adapted is not None:
        print(
            f"  dynamic eval     {adapted.bits_per_char:.4f} bits per character "
            f"({adapted.bits_per_char - r.bits_per_char:+.4f}): adapting to the text "
            "while scoring it, a separate measurement (Krause et al. 2018)"
        )


def add_compare(sub: Sub) -> None:
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
    p.add_argument("--out", help="bar chart (default: compare.png, numbered if taken)")
    add_fields(p, EvalConfig, COMPARE)
    add_device(p)
    p.set_defaults(run=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    import json

    from nextchar.core.outputs import numbered
    from nextchar.inference.compare import check_chart_path, compare, plot, table
    from nextchar.text.data import read_text

    options = EvalConfig(**given(args, EvalConfig))
    chart = Path(args.out) if args.out else numbered(Path("compare.png"))
    check_chart_path(chart, options.overwrite)
    text = read_text(args.file, options.encoding, options.errors)
    rows = compare(args.models, text, args.device, options.stride, dynamic_config(options))
    if options.json:
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
                        "dynamic_bits_per_char": r.dynamic and r.dynamic.bits_per_char,
                    }
                )
            )
    else:
        print(f"{args.file}: {len(text):,} characters\n")
        print(table(rows), end="")
    path = plot(rows, chart, f"{Path(args.file).name}: bits per character")
    if not options.json:
        print(f"\nchart: {path}")
    return 0


def add_export(sub: Sub) -> None:
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
    add_fields(p, ExportConfig)
    p.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    from nextchar.inference.export import export_onnx
    from nextchar.models.onnx import load_onnx

    options = ExportConfig(**given(args, ExportConfig))
    out = export_onnx(args.checkpoint, args.out, options.opset, options.overwrite)
    model, _ = load_onnx(out)
    names = ", ".join(model.state_names)
    print(
        f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, opset {options.opset}): "
        f"ids [batch, sequence] + state {names} -> logits + new state"
    )
    print(f"next: nextchar sample {out} --length 300")
    return 0
