"""Dynamic evaluation's speed: the hand-written backward (models/adapt.py) against autograd
through torch's own recurrent module, on one thread (as before) and on the tuned thread count,
on the same model and text in one run. Not a test.

    python bench/dynamic.py RUN [--text shakespeare:val] [--chars 20000]

Prints chars/s and bits per character for each path (the bits must agree: the same update).
"""

from __future__ import annotations

import argparse
import math
import os
import time

from nextchar.inference.dynamic import DynamicConfig, dynamic_evaluate_ids
from nextchar.models import load
from nextchar.text.data import encode, read_text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="a run directory or checkpoint of a recurrent model")
    ap.add_argument("--text", default="shakespeare:val")
    ap.add_argument("--chars", type=int, default=20_000)
    args = ap.parse_args()
    model, tokenizer = load(args.run, device="cpu")
    ids = encode(tokenizer, read_text(args.text)[: args.chars])
    unrolled = type(model).adapting_forward
    module = lambda self, x, s: (*self.forward(x, s), lambda: None)  # noqa: E731
    paths = {
        "module on one thread (before this work)": (module, "1"),
        "module, threads tuned": (module, None),
        "unrolled (models/adapt.py), threads tuned": (unrolled, None),
    }
    rows = []
    for name, (forward, threads) in paths.items():
        type(model).adapting_forward = forward
        if threads:
            os.environ["OMP_NUM_THREADS"] = threads  # a fixed count: the tuner keeps it
        started = time.perf_counter()
        nll, tokens, _ = dynamic_evaluate_ids(model, ids, DynamicConfig())
        seconds = time.perf_counter() - started
        os.environ.pop("OMP_NUM_THREADS", None)
        rows.append((name, tokens / seconds, nll / tokens / math.log(2)))
    print(f"{model.describe()}, {args.text} first {args.chars:,} characters, batch 1:\n")
    print(
        "| dynamic evaluation | chars/s | bits per character | × the first |\n|---|---:|---:|---:|"
    )
    for name, rate, bpc in rows:
        print(f"| {name} | {rate:,.0f} | {bpc:.4f} | {rate / rows[0][1]:.2f} |")


if __name__ == "__main__":
    main()
