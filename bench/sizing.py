"""The sizing table: for each candidate shape, validation bits per character (the whole
`shakespeare_val.txt`, best checkpoint) after runs of several step counts, each with the
schedule and warm-up of a run that long. Steps, not seconds: the table is the same on any
machine, and a run that sizes itself (training/sizing.py) reads it with the speed it
measures. Then each candidate's speed here, and what the probe would choose for 60 s and
8 minutes at two machine speeds. Not a test.

    python bench/sizing.py                    # the sweep (jobs in parallel, one thread each)
    python bench/sizing.py --write            # ... and write src/nextchar/training/sizing.json
    python bench/sizing.py --speeds-only      # the speeds and choices from the table as it is
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from nextchar.core.config import TrainConfig, model_config
from nextchar.text.data import encode, read_text
from nextchar.text.tokenizers import CharTokenizer
from nextchar.training import sizing
from nextchar.training.loop import train

CANDIDATES = [
    {
        "model": {"cell": "gru", "num_layers": 2, "hidden_size": h},
        "train": {"batch_size": 64, "seq_len": 64},
    }
    for h in (192, 256, 384, 512)
]
STEPS = (50, 150, 500, 1500)
# Short runs are noisy (two seeds of a 150-step run differed by 0.44 bpc): their points are
# the mean over these seeds.
SEEDS = {50: (0, 1), 150: (0, 1), 500: (0,), 1500: (0,)}


def one(index: int, steps: int, seed: int) -> float:
    """Train candidate `index` for `steps` steps on shakespeare; its val bpc."""
    c = CANDIDATES[index]
    config = TrainConfig(
        files=("shakespeare",), val_file="shakespeare:val", max_steps=steps, eval_every=steps,
        threads=1, seed=seed, **c["train"],
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        result = train(model_config(**c["model"]), config, Path(tmp) / "run", progress=False)
    return result.final_val_bpc


def sweep(jobs: int) -> list[dict]:
    work = [
        (i, s, seed)
        for s in sorted(STEPS, reverse=True)
        for seed in SEEDS[s]
        for i in range(len(CANDIDATES))
    ]
    rows: dict[tuple[int, int, int], float] = {}
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        futures = {
            pool.submit(
                subprocess.run,
                [sys.executable, __file__, "--one", str(i), str(s), str(seed)],
                capture_output=True, text=True, check=True,
            ): (i, s, seed)
            for i, s, seed in work
        }  # fmt: skip
        for future in concurrent.futures.as_completed(futures):
            i, s, seed = futures[future]
            rows[i, s, seed] = float(future.result().stdout.strip().splitlines()[-1])
            print(f"  {sizing.Candidate(**CANDIDATES[i], points=()).name()} {s} steps, seed "
                  f"{seed}: {rows[i, s, seed]:.3f}", flush=True)  # fmt: skip
    out = []
    for i, c in enumerate(CANDIDATES):
        chars = c["train"]["batch_size"] * c["train"]["seq_len"]
        mean = {s: sum(rows[i, s, seed] for seed in SEEDS[s]) / len(SEEDS[s]) for s in STEPS}
        out.append({**c, "points": [[s * chars, round(mean[s], 4)] for s in STEPS]})
    return out


def speeds_and_choices(table: list[sizing.Candidate]) -> None:
    """Each candidate timed as a sized run times it (sizing.best_speed), on the quiet machine
    (the faster of 1 and 2 threads) and on one thread beside a busy process (a slower
    machine); what that predicts for 60 s and 8 minutes, and the choice."""
    tokenizer = CharTokenizer.build(read_text("shakespeare"))
    ids = encode(tokenizer, read_text("shakespeare")[:20000]).long()
    print(
        "\n| machine | candidate | chars/s (threads) | 60 s: M chars, bpc | 8 min: M chars, bpc |"
    )
    print("|---|---|---:|---:|---:|")
    for label, threads in (("quiet, 2 cores", None), ("1 thread beside a busy process", 1)):
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if threads else None
        base = TrainConfig(files=("shakespeare",), max_time=60, max_steps=None, threads=threads)
        best: dict[int, list[tuple[float, str]]] = {}
        for c in table:
            m = model_config(vocab_size=tokenizer.vocab_size, **c.model)
            t = dataclasses.replace(base, **c.train)
            speed, used = sizing.best_speed(m, t, ids, torch.device("cpu"))
            cells = []
            for budget in (60, 480):
                chars = speed * budget * sizing.TRAIN_SHARE
                bpc = c.bpc_at(chars)
                best.setdefault(budget, []).append((bpc, c.name()))
                cells.append(f"{chars / 1e6:.2f}, {bpc:.3f}")
            print(f"| {label} | {c.name()} | {speed:,.0f} ({used}) | {cells[0]} | {cells[1]} |",
                  flush=True)  # fmt: skip
        for budget, rows in best.items():
            print(f"| {label} | **choice for {budget} s** | | {min(rows)[1]} | |")
        if busy is not None:
            busy.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--one", nargs=3, type=int, help=argparse.SUPPRESS)
    ap.add_argument("--jobs", type=int, default=2, help="runs at once (one thread each)")
    ap.add_argument("--write", action="store_true", help="write the package's sizing.json")
    ap.add_argument("--speeds-only", action="store_true")
    args = ap.parse_args()
    if args.one:
        os.environ["OMP_NUM_THREADS"] = "1"
        print(one(*args.one))
        return
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}")  # fmt: skip
    if not args.speeds_only:
        started = time.perf_counter()
        rows = sweep(args.jobs)
        print(f"\nsweep: {time.perf_counter() - started:.0f} s")
        print("\n| candidate | " + " | ".join(f"{s} steps" for s in STEPS) + " |")
        print("|---|" + "---:|" * len(STEPS))
        for r in rows:
            name = sizing.Candidate(r["model"], r["train"], ()).name()
            print(f"| {name} | " + " | ".join(f"{b:.3f}" for _, b in r["points"]) + " |")
        if args.write:
            data = {
                "made_by": "bench/sizing.py: training characters -> val bpc (whole "
                "shakespeare_val.txt), one thread a run; 50- and 150-step points are the mean "
                "of seeds 0 and 1",
                "candidates": rows,
            }
            sizing.TABLE.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
            print(f"wrote {sizing.TABLE}")
    speeds_and_choices(sizing.candidates())


if __name__ == "__main__":
    main()
