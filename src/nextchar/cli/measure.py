"""Commands that measure or convert models: `eval`, `compare`, `export`."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from nextchar.cli.common import MODEL_ARG_HELP, Sub, add_device
from nextchar.core.errors import NextcharError


def add_eval(sub: Sub) -> None:
    p = sub.add_parser(
        "eval",
        help="measure a checkpoint on text: bits per character",
        description="Total NLL (nats), nats and bits per character, perplexity "
        "per token and next-token accuracy; the state is carried across the text.",
    )
    p.add_argument("checkpoint", help=MODEL_ARG_HELP)
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
    add_device(p)
    add_dynamic(p)
    p.add_argument("--json", action="store_true", help="print one JSON object per file")
    p.set_defaults(run=run_eval)


def add_dynamic(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dynamic",
        action="store_true",
        help="also dynamic evaluation (Krause et al. 2018): the model adapts to the text as "
        "it scores it, one RMS step per segment after scoring it; reported apart from the "
        "static number",
    )
    p.add_argument("--dynamic-lr", type=float, default=None, help="its step size (default: 3e-4)")
    p.add_argument(
        "--dynamic-decay",
        type=float,
        default=None,
        help="its pull back to the trained weights per step (default: 1e-3)",
    )


def dynamic_config(args: argparse.Namespace) -> object:
    """The DynamicConfig the flags ask for, or None without --dynamic."""
    if not args.dynamic:
        if args.dynamic_lr is not None or args.dynamic_decay is not None:
            raise NextcharError("--dynamic-lr and --dynamic-decay need --dynamic")
        return None
    from nextchar.inference.dynamic import DynamicConfig

    given = {"lr": args.dynamic_lr, "decay": args.dynamic_decay}
    return DynamicConfig(**{k: v for k, v in given.items() if v is not None})


def run_eval(args: argparse.Namespace) -> int:
    import json

    from nextchar.inference.evaluate import evaluate_text
    from nextchar.models import load
    from nextchar.text.data import read_text

    if args.batch_size < 1 or args.seq_len < 1:
        raise NextcharError("--batch-size and --seq-len must be >= 1")
    dynamic = dynamic_config(args)
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
        adapted = None
        if dynamic is not None:
            adapted = evaluate_text(model, tokenizer, text, progress=not args.json, dynamic=dynamic)
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
    p.add_argument("--out", default="compare.png", help="bar chart (default: compare.png)")
    p.add_argument("--stride", type=int, default=None, help="GPT-2 sliding-window stride")
    p.add_argument("--encoding", default="utf-8", help="text encoding (default: utf-8)")
    add_device(p)
    add_dynamic(p)
    p.add_argument("--json", action="store_true", help="print one JSON object per model")
    p.set_defaults(run=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    import json

    from nextchar.inference.compare import check_chart_path, compare, plot, table
    from nextchar.text.data import read_text

    check_chart_path(Path(args.out))
    text = read_text(args.file, args.encoding)
    rows = compare(args.models, text, args.device, args.stride, dynamic_config(args))
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
                        "dynamic_bits_per_char": r.dynamic and r.dynamic.bits_per_char,
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
    p.add_argument("--format", choices=("onnx",), default="onnx", help="export format")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset, 7-20 (default: 17)")
    p.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    from nextchar.inference.export import export_onnx
    from nextchar.models.onnx import load_onnx

    out = export_onnx(args.checkpoint, args.out, args.opset)
    model, _ = load_onnx(out)
    names = ", ".join(model.state_names)
    print(
        f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, opset {args.opset}): "
        f"ids [batch, sequence] + state {names} -> logits + new state"
    )
    print(f"next: nextchar sample {out} --length 300")
    return 0
