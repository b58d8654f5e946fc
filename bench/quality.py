"""Train a configuration for a wall-clock budget on a corpus; print validation bits per
character (on the whole validation file) and a sample. Not a test: numbers depend on the
machine. Defaults: the documented CPU default on the Shakespeare corpus, 8 minutes.

    python bench/quality.py                                   # the CPU default, 480 s
    python bench/quality.py --budget 150 --set hidden_size=512 --set num_layers=1
    python bench/quality.py --anchor PATH/word_language_model [--slow]   # beside the anchor
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import torch

from nextchar.core.commands import SampleConfig
from nextchar.core.config import MODEL_CONFIGS, TrainConfig, model_config
from nextchar.inference.generate import sample
from nextchar.models import load
from nextchar.training.loop import train
from nextchar.training.sizing import sizes_itself


def parse_value(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", default="shakespeare")
    ap.add_argument("--val", default="shakespeare:val")
    ap.add_argument("--budget", type=float, default=480.0, help="seconds of training")
    ap.add_argument(
        "--by-steps",
        action="store_true",
        help="keep the default's step budget (max_steps) instead of --budget",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a ModelConfig or TrainConfig field (repeatable)",
    )
    ap.add_argument("--out", default=None, help="run directory (default: a temporary one)")
    ap.add_argument(
        "--slow",
        action="store_true",
        help="simulate a slower machine: one thread (nextchar and the anchor) beside a busy "
        "process (a `while True` loop) for the whole run",
    )
    ap.add_argument(
        "--anchor",
        type=Path,
        default=None,
        help="pytorch/examples' word_language_model folder: train it right after, for the "
        "same budget, and print both (bench/anchor.py)",
    )
    args = ap.parse_args()

    model_fields = {f.name for c in MODEL_CONFIGS.values() for f in dataclasses.fields(c)}
    model_kw, train_kw = {}, {}
    for item in args.set:
        key, _, value = item.partition("=")
        (model_kw if key in model_fields else train_kw)[key] = parse_value(value)
    budget = {} if args.by_steps else {"max_steps": None, "max_time": args.budget}
    timed = {} if args.by_steps else {"max_time": args.budget}
    auto = sizes_itself(model_kw, {**train_kw, **timed})  # as `nextchar train` decides it
    config = TrainConfig(
        files=(args.train,), val_file=args.val, size_to_machine=auto, **{**budget, **train_kw}
    )
    model = model_config(**model_kw)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="nextchar-quality-"))
    busy = None
    if args.slow:
        import subprocess
        import sys

        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        config = dataclasses.replace(config, threads=1)
    t0 = time.perf_counter()
    result = train(model, config, out / "run", progress=False, log=print)
    model, tokenizer = load(out / "run", device=config.device)
    text = sample(model, tokenizer, "\n", SampleConfig(length=300, temperature=0.8, seed=0))[0]
    print("| config | steps | train s | chars/s | val bpc (whole val file) |")
    print("|---|---:|---:|---:|---:|")
    desc = " ".join(args.set) or "CPU default"
    print(
        f"| {desc} | {result.step} | {result.seconds:.0f} | {result.chars_per_second:,.0f} "
        f"| {result.final_val_bpc:.3f} |"
    )
    print(
        f"threads {torch.get_num_threads()}, wall {time.perf_counter() - t0:.0f} s, "
        f"run dir {out / 'run'}"
    )
    print("sample (temperature 0.8):\n" + text, flush=True)
    if args.anchor is not None:
        from anchor import run_anchor

        threads = 1 if args.slow else None
        ref = run_anchor(args.anchor, args.train, args.val, args.budget, threads)
        print("| model | steps/epochs | seconds | chars/s | val bpc |\n|---|---:|---:|---:|---:|")
        print(
            f"| nextchar {desc} | {result.step} steps | {result.seconds:.0f} | "
            f"{result.chars_per_second:,.0f} | {result.final_val_bpc:.3f} |"
        )
        print(
            f"| word_language_model LSTM 2x256 | {ref['epochs']:.0f} epochs | "
            f"{ref['seconds']:.0f} | {ref['chars_per_second']:,.0f} | {ref['val_bpc']:.3f} |"
        )
        print(f"nextchar - anchor: {result.final_val_bpc - ref['val_bpc']:+.3f} bpc")
    if busy is not None:
        busy.kill()


if __name__ == "__main__":
    main()
