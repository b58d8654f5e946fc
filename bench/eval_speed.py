"""Evaluation speed beside the anchor, in one run: word_language_model's `evaluate` (its own
model.py, unmodified, with main.py's loop: batch 10, bptt 64, LSTM 2x256, its 200-wide
embedding) and `nextchar eval`'s evaluation of nextchar models, on the same text
(`shakespeare:val`), each in characters per second and in GFLOP/s (the matrix products
per character of the forward pass), so that models of different sizes compare at equal
FLOPs. Random weights: speed does not depend on them. Not a test.

    python bench/eval_speed.py --anchor PATH/TO/examples/word_language_model
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

from nextchar.core.config import model_config
from nextchar.inference.evaluate import evaluate_ids
from nextchar.models import build_model
from nextchar.text.data import encode, read_text
from nextchar.text.tokenizers import CharTokenizer


def recurrent_flops(cell: str, inputs: int, hidden: int, layers: int, vocab: int) -> int:
    """Multiply-adds x 2 per character of a forward pass: every layer's input and recurrent
    products and the output layer (an embedding lookup is free)."""
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    total = 0
    for i in range(layers):
        total += 2 * gates * hidden * ((inputs if i == 0 else hidden) + hidden)
    return total + 2 * hidden * vocab


def anchor_rate(folder: Path, ids: torch.Tensor, vocab: int) -> float:
    """word_language_model's evaluate (main.py's loop, its model.py) in characters/s."""
    sys.path.insert(0, str(folder))
    import model as anchor_model  # word_language_model/model.py

    net = anchor_model.RNNModel("LSTM", vocab, 200, 256, 2, 0.0).eval()
    criterion = nn.NLLLoss()
    eval_batch_size, bptt = 10, 64
    n = ids.numel() // eval_batch_size
    data = ids[: n * eval_batch_size].view(eval_batch_size, -1).t().contiguous()  # batchify
    started = time.perf_counter()
    total_loss = 0.0
    hidden = net.init_hidden(eval_batch_size)
    with torch.no_grad():
        for i in range(0, data.size(0) - 1, bptt):
            seq_len = min(bptt, len(data) - 1 - i)
            x, targets = data[i : i + seq_len], data[i + 1 : i + 1 + seq_len].reshape(-1)
            output, hidden = net(x, hidden)
            hidden = tuple(h.detach() for h in hidden)
            total_loss += len(x) * criterion(output, targets).item()
    return (data.size(0) - 1) * eval_batch_size / (time.perf_counter() - started)


def nextchar_rate(fields: dict, ids: torch.Tensor, vocab: int) -> float:
    torch.manual_seed(0)
    model = build_model(model_config(vocab_size=vocab, **fields))
    started = time.perf_counter()
    _, tokens, _ = evaluate_ids(model, ids)
    return tokens / (time.perf_counter() - started)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--anchor", type=Path, required=True, help="word_language_model folder")
    ap.add_argument("--text", default="shakespeare:val")
    ap.add_argument("--threads", type=int, default=None, help="fix the thread count")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    text = read_text(args.text)
    tokenizer = CharTokenizer.build(read_text("shakespeare") + text)
    ids = encode(tokenizer, text).long()
    vocab = tokenizer.vocab_size
    rows = [("word_language_model evaluate, LSTM 2x256 (emb 200)", "anchor", None,
             recurrent_flops("lstm", 200, 256, 2, vocab))]  # fmt: skip
    for fields in (
        {"cell": "gru", "hidden_size": 512},
        {"cell": "gru", "hidden_size": 384},
        {"cell": "gru", "hidden_size": 256},
        {"cell": "lstm", "hidden_size": 256},
    ):
        config = model_config(vocab_size=vocab, **fields)
        flops = recurrent_flops(config.cell, config.input_size, config.hidden_size,
                                config.num_layers, vocab)  # fmt: skip
        rows.append((f"nextchar eval, {config.describe()} (emb 64)", "nextchar", fields, flops))
    print(f"{len(ids):,} characters, torch threads {torch.get_num_threads()}\n")
    print("| evaluation | MFLOP/char | chars/s | GFLOP/s | vs the anchor at equal FLOPs |")
    print("|---|---:|---:|---:|---:|")
    reference = None
    for name, kind, fields, flops in rows:
        for _ in range(2):  # the second run: warm caches and the thread tuner's choice
            rate = anchor_rate(args.anchor, ids, vocab) if kind == "anchor" else None
            rate = rate or nextchar_rate(fields, ids, vocab)
        gflops = rate * flops / 1e9
        reference = reference or gflops
        print(f"| {name} | {flops / 1e6:.2f} | {rate:,.0f} | {gflops:.1f} | "
              f"{gflops / reference:.2f}x |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
