"""Word LSTM with and without word2vec initialisation, same budget, same data: validation
perplexity per word and bits per character (on the whole validation file). Not a test.

    python bench/word_embeddings.py                  # the word-level defaults (1,000 steps)
    python bench/word_embeddings.py --budget 120     # 120 s of training each instead
    python bench/word_embeddings.py --set hidden_size=512 --set max_vocab=10000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import torch

from nextchar.core.config import ModelConfig, TrainConfig, model_config
from nextchar.inference.evaluate import evaluate_text
from nextchar.models import load_checkpoint
from nextchar.text.data import read_text
from nextchar.training.loop import train
from nextchar.training.plan import WORD_LEVEL


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", default="shakespeare:train")
    ap.add_argument("--val", default="shakespeare:val")
    ap.add_argument(
        "--budget", type=float, default=None, help="seconds of training per run (default: steps)"
    )
    ap.add_argument("--inits", default="random,word2vec", help="comma-separated: random, word2vec")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()

    model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
    model_kw, train_kw = dict(WORD_LEVEL["model"]), dict(WORD_LEVEL["train"])
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        (model_kw if key in model_fields else train_kw)[key] = parsed
    val_text = read_text(args.val)
    rows = []
    for init in args.inits.split(","):
        config = TrainConfig(
            files=(args.train,),
            val_file=args.val,
            **train_kw,
            **({"max_steps": None, "max_time": args.budget} if args.budget else {}),
            embeddings=None if init == "random" else init,
        )
        out = Path(tempfile.mkdtemp(prefix="nextchar-words-"))
        t0 = time.perf_counter()
        lines: list[str] = []
        result = train(
            model_config(**model_kw), config, out / "run", progress=False, log=lines.append
        )
        ckpt = load_checkpoint(out / "run", "cpu")
        r = evaluate_text(ckpt.model, ckpt.tokenizer, val_text)
        w2v = ckpt.meta.get("embeddings", {}).get("seconds")
        rows.append(
            f"| {init} | {f'{w2v:.0f}' if w2v else '-'} | {ckpt.tokenizer.vocab_size:,} "
            f"| {result.parameters:,} | {result.step} "
            f"| {result.seconds:.0f} | {r.perplexity:.1f} | {r.bits_per_char:.3f} "
            f"| {r.unknown / (r.tokens + 1):.1%} |"
        )
        print(*lines, f"{init}: wall {time.perf_counter() - t0:.0f} s, run dir {out}", sep="\n")
    threads = torch.get_num_threads()
    budget = f"{args.budget:.0f} s" if args.budget else f"{train_kw['max_steps']} steps"
    print(f"\nmodel {model_kw}\ntrain {train_kw}, {budget} each, threads {threads}")
    print(
        "| embedding init | word2vec s | vocab | parameters | steps | train s "
        "| val perplexity (per word) | val bpc | val <unk> |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(*rows, sep="\n")


if __name__ == "__main__":
    main()
