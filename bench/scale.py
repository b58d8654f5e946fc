"""Does the cost of a text grow linearly with it? For texts of growing size (the Shakespeare
corpus repeated), `nextchar train FILE --max-steps 30` is timed to its first step, its
training speed is read from its metrics once the thread tuner has settled, and its peak
memory is read from the kernel; then `nextchar eval` of the last model is timed on texts of
growing size. Not a test: it writes up to a few hundred MB to a temporary folder and takes
minutes.

    python bench/scale.py [--sizes 1 10 100 200] [--eval-sizes 0.25 0.5 1 2]

Prints per size: seconds from start to the first step (reading, encoding, building), training
characters/s (flat when a step does not depend on the text's size), peak resident memory and
what it adds per byte of text (the goal: <= 3 beyond the model and torch, the smallest row);
and evaluation seconds per MB (flat when evaluation is linear).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nextchar.text.data import read_text

# Run in a child of its own: RUSAGE_CHILDREN is the largest child of the process that asks.
MEASURE = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, capture_output=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[1, 10, 100, 200], help="MB")
    ap.add_argument("--eval-sizes", type=float, nargs="+", default=[0.25, 0.5, 1, 2], help="MB")
    args = ap.parse_args()
    base = read_text("shakespeare").encode("utf-8")
    rows = []
    evals = []
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        val = Path(tmp) / "val.txt"  # a short validation text: the runs' end stays short
        val.write_text(read_text("shakespeare:val")[:20_000], encoding="utf-8")
        for mb in args.sizes:
            text = write_text(Path(tmp) / f"text-{mb:g}MB.txt", base, mb)
            run = Path(tmp) / f"run-{mb:g}"
            cmd = [sys.executable, "-m", "nextchar", "train", str(text), "--max-steps", "30",
                   "--val-file", str(val), "--eval-every", "1000", "--log-every", "1", "--quiet",
                   "--out", str(run)]  # fmt: skip
            done = subprocess.run([sys.executable, "-c", MEASURE, *cmd], check=True,
                                  capture_output=True, text=True)  # fmt: skip
            peak_mb = int(done.stdout.split()[-1]) / 1024  # ru_maxrss is in KiB on Linux
            metrics = [json.loads(line) for line in (run / "metrics.jsonl").open()]
            steps = [r for r in metrics if "loss" in r]
            to_step = steps[0]["elapsed"]  # the first step included
            speed = round(statistics.median(r["chars_per_sec"] for r in steps[20:]))  # settled
            rows.append((text.stat().st_size / 1e6, to_step, speed, peak_mb))
            text.unlink()
        model = Path(tmp) / f"run-{args.sizes[-1]:g}"  # it has seen every character
        for mb in args.eval_sizes:
            text = write_text(Path(tmp) / f"eval-{mb:g}MB.txt", base, mb)
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "nextchar", "eval", str(model), str(text)],
                           check=True, capture_output=True)  # fmt: skip
            evals.append((text.stat().st_size / 1e6, time.perf_counter() - started))
            text.unlink()
    base_peak = rows[0][3]
    print("| text MB | seconds to the first step | training chars/s | peak memory MB | "
          "(peak − the smallest row's) / text size |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|")
    for mb, seconds, speed, peak in rows:
        extra = (peak - base_peak) / (mb - rows[0][0]) if mb > rows[0][0] else float("nan")
        print(f"| {mb:,.0f} | {seconds:.1f} | {speed:,} | {peak:,.0f} | {extra:.2f} |")
    print("\n| `nextchar eval` of the largest row's model, text MB | seconds (the command) | "
          "seconds per MB |\n|---:|---:|---:|")  # fmt: skip
    for mb, seconds in evals:
        print(f"| {mb:g} | {seconds:.1f} | {seconds / mb:.1f} |")


def write_text(path: Path, base: bytes, mb: float) -> Path:
    """`mb` MB of `base` repeated (cut at a character boundary)."""
    size = int(mb * 1e6)
    with path.open("wb") as f:
        for _ in range(size // len(base)):
            f.write(base)
        f.write(base[: size % len(base)].decode("utf-8", "ignore").encode("utf-8"))
    return path


if __name__ == "__main__":
    main()
