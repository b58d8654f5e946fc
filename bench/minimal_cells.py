"""minGRU and minLSTM against GRU and LSTM at (nearly) equal parameter count: each trained for
the same wall-clock budget on the Shakespeare corpus with the CPU default's other settings, in
one run, on this machine. Prints training speed (characters/s) and validation bits per
character on the whole validation file. Not a test: numbers depend on the machine.

    python bench/minimal_cells.py                 # 8 minutes per cell (~35 minutes)
    python bench/minimal_cells.py --budget 120    # a quicker look
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from nextchar.core.config import TrainConfig, model_config
from nextchar.models import build_model, count_parameters
from nextchar.text.data import read_text
from nextchar.training.loop import train

CELLS = ("gru", "lstm", "mingru", "minlstm")


def parameters(cell: str, hidden: int, vocab: int, layers: int) -> int:
    return count_parameters(
        build_model(
            model_config(vocab_size=vocab, cell=cell, hidden_size=hidden, num_layers=layers)
        )
    )


def matched_hidden(cell: str, target: int, vocab: int, layers: int) -> int:
    """The hidden size whose parameter count is closest to `target`."""
    low, high = 8, 4096
    while low < high:  # parameters grow with the hidden size
        mid = (low + high) // 2
        if parameters(cell, mid, vocab, layers) < target:
            low = mid + 1
        else:
            high = mid
    return min((low - 1, low), key=lambda h: abs(parameters(cell, h, vocab, layers) - target))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", default="shakespeare")
    ap.add_argument("--val", default="shakespeare:val")
    ap.add_argument("--budget", type=float, default=480.0, help="seconds of training per cell")
    ap.add_argument("--cells", default=",".join(CELLS))
    args = ap.parse_args()
    vocab = len(set(read_text(args.train) + read_text(args.val)))
    default = model_config()
    target = parameters(default.cell, default.hidden_size, vocab, default.num_layers)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; target "
          f"{target:,} parameters (the default {default.cell} 2x{default.hidden_size}); "
          f"{args.budget:.0f} s per cell")  # fmt: skip
    rows = []
    for cell in args.cells.split(","):
        hidden = matched_hidden(cell, target, vocab, default.num_layers)
        model = model_config(cell=cell, hidden_size=hidden)  # type: ignore[arg-type]
        config = TrainConfig(
            files=(args.train,), val_file=args.val, max_steps=None, max_time=args.budget
        )
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            result = train(model, config, Path(tmp) / "run", progress=False)
        rows.append((cell, hidden, result, time.perf_counter() - started))
        print(f"  {cell}: {result.step} steps, {result.final_val_bpc:.3f} bpc", flush=True)
    print("\n| cell | hidden | parameters | steps | chars/s (training) | val bpc | wall s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for cell, hidden, r, wall in rows:
        print(f"| {cell} | 2x{hidden} | {r.parameters:,} | {r.step:,} | "
              f"{r.chars_per_second:,.0f} | {r.final_val_bpc:.3f} | {wall:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
