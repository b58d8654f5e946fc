"""fp32 against bf16 autocast (and torch.compile) for training and inference, on one device, in
one run: the nextchar trainer for the same steps from the same seed, then evaluation speed.
Prints a table with each setting's speed as a ratio to fp32 measured here, and the validation
bits per character each reached, so a faster setting that learns worse shows. Not a test.

    python bench/precision.py --device cpu                      # does bf16 pay on this CPU?
    python bench/precision.py --device cuda --settings fp32 bf16 bf16+compile
    python bench/precision.py --device cuda --model gpt2 --hidden 512 --layers 8
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from nextchar.core.config import ModelConfig, TrainConfig, model_config
from nextchar.core.runtime import autocast_for
from nextchar.inference.evaluate import evaluate_ids
from nextchar.models import load
from nextchar.text.data import encode, read_text
from nextchar.training.loop import train


def cpu_features() -> str:
    try:
        flags = next(
            line for line in Path("/proc/cpuinfo").read_text().splitlines() if "flags" in line
        )
    except (OSError, StopIteration):
        return "unknown CPU"
    found = [f for f in ("avx512_bf16", "amx_bf16", "amx_tile") if f" {f}" in flags]
    return "CPU bf16 instructions: " + (", ".join(found) if found else "none")


def config_for(args: argparse.Namespace) -> ModelConfig:
    if args.model == "gpt2":  # --hidden is the width, --layers the depth, heads of 64
        return model_config(
            kind="gpt2",
            n_layer=args.layers,
            n_embd=args.hidden,
            n_head=max(1, args.hidden // 64),
            block_size=args.seq,
            dropout=0.0,
        )
    return model_config(
        cell=args.model, hidden_size=args.hidden, num_layers=args.layers, embedding_dim=args.emb
    )


def run(setting: str, args: argparse.Namespace, tmp: Path) -> tuple[float, float, float, float]:
    """(training chars/s, validation bpc, evaluation chars/s, compile+first-steps seconds)."""
    precision = "bf16" if "bf16" in setting else "fp32"
    config = TrainConfig(
        files=(args.train,),
        val_file=args.val,
        batch_size=args.batch,
        seq_len=args.seq,
        max_steps=args.steps,
        eval_every=10**6,
        eval_tokens=args.eval_chars,
        log_every=5,
        device=args.device,
        precision=precision,
        compile="compile" in setting,
    )
    model = config_for(args)
    t0 = time.perf_counter()
    train(model, config, tmp / setting, progress=False)
    total = time.perf_counter() - t0
    rows = [json.loads(line) for line in (tmp / setting / "metrics.jsonl").read_text().splitlines()]
    speeds = [r["chars_per_sec"] for r in rows if "chars_per_sec" in r]
    val_bpc = [r["val_bpc"] for r in rows if "val_bpc" in r][-1]
    # inference: the trained model over the validation text, under the same autocast
    lm, tok = load(tmp / setting / "last", device=args.device)
    ids = encode(tok, read_text(args.val)[: args.eval_chars])
    device = next(lm.parameters()).device
    with torch.no_grad(), autocast_for(precision, device, lm.config.kind):
        evaluate_ids(lm, ids[:5000], batch_size=64, seq_len=256)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        _, tokens, _ = evaluate_ids(lm, ids, batch_size=64, seq_len=256)
        if device.type == "cuda":
            torch.cuda.synchronize()
        eval_speed = tokens / (time.perf_counter() - t1)
    return statistics.median(speeds[1:]), val_bpc, eval_speed, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--settings", nargs="+", default=["fp32", "bf16"])
    ap.add_argument("--model", choices=("lstm", "gru", "rnn", "gpt2"), default="lstm")
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--emb", type=int, default=128)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--eval-chars", type=int, default=100_000)
    ap.add_argument("--train", default="shakespeare", help="file or built-in corpus")
    ap.add_argument("--val", default="shakespeare:val", help="file or built-in corpus")
    args = ap.parse_args()
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else cpu_features()
    print(
        f"{config_for(args).describe()}, batch {args.batch} x {args.seq}, {args.steps} steps "
        f"from seed 0, on {args.device} ({name}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads)"
    )
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for setting in args.settings:
            results[setting] = run(setting, args, Path(tmp))
    base = results[args.settings[0]]
    print(
        f"| setting | train chars/s | x {args.settings[0]} | val bpc after {args.steps} steps "
        f"| eval chars/s | x {args.settings[0]} | wall s (incl. compile) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for setting, (speed, bpc, eval_speed, total) in results.items():
        print(
            f"| {setting} | {speed:,.0f} | {speed / base[0]:.2f} | {bpc:.3f} | "
            f"{eval_speed:,.0f} | {eval_speed / base[2]:.2f} | {total:.0f} |"
        )


if __name__ == "__main__":
    main()
