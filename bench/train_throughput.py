"""Training speed on CPU: the nextchar trainer beside a bare nn.LSTM + nn.Linear loop on the
same batches, in the same run, and both in GFLOP/s beside a measured float32 matmul.
Target: trainer >= 0.9x the bare loop. Not a test: absolute numbers depend on the machine.

    python bench/train_throughput.py [--hidden 512 --layers 2 --batch 64 --seq 128 --steps 12]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from nextchar.core.config import TrainConfig, model_config
from nextchar.text.data import Batches, encode, read_text
from nextchar.text.tokenizers import CharTokenizer
from nextchar.training.loop import train


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e9


def flops_per_char(vocab: int, emb: int, hidden: int, layers: int) -> float:
    """Forward matmul FLOPs per character, times 3 for forward + backward."""
    forward = 0
    for layer in range(layers):
        inp = emb if layer == 0 else hidden
        forward += 2 * 4 * hidden * (inp + hidden)
    forward += 2 * hidden * vocab
    return 3 * forward


def bare_loop(
    batches: Batches, vocab: int, emb: int, hidden: int, layers: int, steps: int
) -> float:
    """chars/s of the plainest correct loop: embedding, LSTM, Linear, AdamW; state carried."""
    torch.manual_seed(0)
    embedding, lstm, head = (
        nn.Embedding(vocab, emb),
        nn.LSTM(emb, hidden, layers, batch_first=True),
        nn.Linear(hidden, vocab),
    )
    params = [*embedding.parameters(), *lstm.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=1e-3)
    state, times = None, []
    for step in range(steps):
        t0 = time.perf_counter()
        x, y = batches.get(step)
        out, state = lstm(embedding(x), state)
        loss = F.cross_entropy(head(out).flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        state = tuple(s.detach() for s in state)
        times.append(time.perf_counter() - t0)
    return x.numel() / statistics.median(times[2:])


def trainer_speed(
    path: Path, emb: int, hidden: int, layers: int, batch: int, seq: int, steps: int
) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(
            files=(str(path),),
            batch_size=batch,
            seq_len=seq,
            max_steps=steps,
            eval_every=10**6,
            eval_tokens=1000,
            log_every=1,
            device="cpu",
            warmup_steps=0,
            # the bare loop's count: this compares the loops; the thread tuner starts on one
            # thread and needs ~10 steps to climb, more than a quick run has
            threads=torch.get_num_threads(),
        )
        model = model_config(cell="lstm", hidden_size=hidden, num_layers=layers, embedding_dim=emb)
        train(model, config, Path(tmp) / "run", progress=False)
        rows = [
            json.loads(line)
            for line in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()
        ]
    speeds = [r["chars_per_sec"] for r in rows if "chars_per_sec" in r]
    return statistics.median(speeds[2:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--emb", type=int, default=512, help="embedding width")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--chars", type=int, default=2_000_000, help="corpus prefix to use")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus.txt"
        path.write_text(read_text("shakespeare")[: args.chars], encoding="utf-8")
        text = path.read_text(encoding="utf-8")
        tok = CharTokenizer.build(text)
        batches = Batches(encode(tok, text[: int(len(text) * 0.9)]), args.batch, args.seq)
        peak = matmul_gflops()
        bare = bare_loop(batches, tok.vocab_size, args.emb, args.hidden, args.layers, args.steps)
        ours = trainer_speed(
            path, args.emb, args.hidden, args.layers, args.batch, args.seq, args.steps
        )
        peak_after = matmul_gflops()
    fpc = flops_per_char(tok.vocab_size, args.emb, args.hidden, args.layers)
    print(
        f"LSTM {args.layers}x{args.hidden}, embedding {args.emb}, vocab {tok.vocab_size}, "
        f"batch {args.batch} x {args.seq}, {torch.get_num_threads()} threads, "
        f"{fpc / 1e6:.1f} MFLOP per character (forward + backward)"
    )
    print("| loop | chars/s | GFLOP/s | share of matmul |")
    print("|---|---:|---:|---:|")
    matmul = (peak + peak_after) / 2
    for name, speed in (("bare nn.LSTM loop", bare), ("nextchar trainer", ours)):
        print(
            f"| {name} | {speed:,.0f} | {speed * fpc / 1e9:.0f} | "
            f"{speed * fpc / 1e9 / matmul:.0%} |"
        )
    print(f"| float32 matmul 2048^3 | | {matmul:.0f} | 100% |")
    print(f"trainer / bare loop = {ours / bare:.3f}  (target >= 0.9)")


if __name__ == "__main__":
    main()
