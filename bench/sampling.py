"""Sampling speed at batch 1 with the state carried, as `nextchar sample` runs it, beside a bare
nn.LSTM/GRU + multinomial loop and (with --examples) word_language_model's generate.py, all
in one run. Not a test. chars/s = 5,000 / (time of a 5,200-character run - a 200-character
run): start-up and the prime cancel out. Model weights are random: speed does not depend on
them.

    python bench/sampling.py [--examples PATH/TO/examples/word_language_model]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from nextchar.core.commands import SampleConfig
from nextchar.core.config import model_config
from nextchar.inference.generate import gumbel_noise, sample, sample_next
from nextchar.models import build_model
from nextchar.text.data import read_text
from nextchar.text.tokenizers import CharTokenizer

SHORT, LONG = 200, 5200
MODELS = (("lstm", 256), ("gru", 192), ("gru", 384))


def rate(run: object, repeats: int = 2) -> float:
    """chars/s from the difference of a LONG and a SHORT run (best of `repeats`)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run(SHORT)  # type: ignore[operator]
        short = time.perf_counter() - started
        started = time.perf_counter()
        run(LONG)  # type: ignore[operator]
        best = min(best, time.perf_counter() - started - short)
    return (LONG - SHORT) / best


def bare_loop(cell: str, hidden: int, vocab: int) -> object:
    """The plainest correct sampler: nn.Embedding + nn.LSTM/GRU + nn.Linear + multinomial."""
    torch.manual_seed(0)
    emb, head = nn.Embedding(vocab, 64), nn.Linear(hidden, vocab)
    rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell](64, hidden, num_layers=2, batch_first=True)

    @torch.inference_mode()
    def run(n: int) -> None:
        x, state = torch.zeros(1, 1, dtype=torch.long), None
        for _ in range(n):
            out, state = rnn(emb(x), state)
            x = torch.multinomial(head(out[:, -1]).softmax(-1), 1)

    return run


def per_step(model: nn.Module, tokenizer: CharTokenizer, n: int = 3000) -> dict[str, float]:
    """Microseconds per token in each part of a sampling step, timed apart."""
    config = SampleConfig()
    with torch.inference_mode():
        torch.set_num_threads(1)
        step = model.stepper(model.init_state(1))
        logits = step(1)
        started = time.perf_counter()
        for _ in range(n):
            logits = step(1)
        model_us = (time.perf_counter() - started) / n * 1e6
        noise = gumbel_noise((n, 1, logits.shape[-1]))
        started = time.perf_counter()
        for i in range(n):
            int(sample_next(logits, config, noise=noise[i]))
        sample_us = (time.perf_counter() - started) / n * 1e6
        decoder = tokenizer.stream_decoder([0])
        started = time.perf_counter()
        for i in range(n):
            decoder.feed(i % tokenizer.vocab_size)
        decode_us = (time.perf_counter() - started) / n * 1e6
    return {"model": model_us, "sampling": sample_us, "decoding": decode_us}


def step_rates(model: nn.Module, n: int = 2000) -> dict[int, float]:
    """Steps/s of the model's stepper on 1 and on all threads (best of 3 runs of n)."""
    rates = {}
    previous = torch.get_num_threads()
    for threads in sorted({1, os.cpu_count() or 1}):
        torch.set_num_threads(threads)
        with torch.inference_mode():
            step = model.stepper(model.init_state(1))
            for _ in range(200):
                step(1)
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                for _ in range(n):
                    step(1)
                best = min(best, time.perf_counter() - started)
        rates[threads] = n / best
    torch.set_num_threads(previous)
    return rates


def anchor_rate(examples: Path) -> float:
    """word_language_model's generate.py on a char-level LSTM 2x256 trained one batch."""
    sys.path.insert(0, str(Path(__file__).parent))
    from anchor import CONFIG, char_tokens

    text = read_text("shakespeare")[:200_000]
    with tempfile.TemporaryDirectory(prefix="anchor-sampling-") as tmp:
        for name in ("train.txt", "valid.txt", "test.txt"):
            (Path(tmp) / name).write_text(char_tokens(text))
        model = str(Path(tmp) / "model.pt")
        common = ["--data", tmp]
        subprocess.run(
            [sys.executable, "main.py", *common, "--save", model, *CONFIG[:-4], "--epochs", "1",
             "--dry-run"],
            cwd=examples, check=True, capture_output=True,
        )  # fmt: skip

        def run(n: int) -> None:
            subprocess.run(
                [sys.executable, "generate.py", *common, "--checkpoint", model, "--words",
                 str(n), "--outf", str(Path(tmp) / "out.txt"), "--log-interval", "100000"],
                cwd=examples, check=True, capture_output=True,
            )  # fmt: skip

        return rate(run)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=Path, help="word_language_model folder (the anchor)")
    args = ap.parse_args()
    threads = torch.get_num_threads()
    text = read_text("shakespeare")[:100_000]
    tokenizer = CharTokenizer.build(text)
    rows = []
    for cell, hidden in MODELS:
        torch.manual_seed(0)
        config = model_config(cell=cell, hidden_size=hidden, vocab_size=tokenizer.vocab_size)
        model = build_model(config).eval()

        def ours(n: int, model: nn.Module = model) -> None:
            sample(model, tokenizer, "\n", SampleConfig(length=n))

        cps = rate(ours)
        bare = rate(bare_loop(cell, hidden, tokenizer.vocab_size))
        split = per_step(model, tokenizer)
        split["python"] = max(0.0, 1e6 / cps - sum(split.values()))
        rows.append((f"{cell} 2x{hidden}", cps, bare, split, step_rates(model)))
    anchor = anchor_rate(args.examples) if args.examples else None
    print("| model | nextchar chars/s | bare loop chars/s | ratio | anchor generate.py | ratio "
          "| µs/char: model · sampling · decoding · rest |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, cps, bare, split, _ in rows:
        ref = (
            f"{anchor:,.0f} | {cps / anchor:.1f}x"
            if anchor and name.startswith("lstm")
            else "- | -"
        )
        parts = " · ".join(f"{v:.0f}" for v in split.values())
        print(f"| {name} | {cps:,.0f} | {bare:,.0f} | {cps / bare:.1f}x | {ref} | {parts} |")
    print("\n| stepper alone, steps/s | " + " | ".join(f"{t} thread(s)" for t in rows[0][4]) + " |")
    print("|---|" + "---:|" * len(rows[0][4]))
    for name, *_, per_count in rows:
        print(f"| {name} | " + " | ".join(f"{r:,.0f}" for r in per_count.values()) + " |")
    print(f"torch {torch.__version__}, {threads} threads available; the anchor: "
          "its LSTM 2x256 (embedding 200), char tokens, default 2 threads")  # fmt: skip


if __name__ == "__main__":
    main()
