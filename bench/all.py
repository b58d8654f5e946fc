"""Every performance figure of README in one run, each beside its reference measured in the
same run. Not a test: machines are noisy; compare ratios, not absolute times.

    python bench/all.py --quick                      # about 4 minutes on 2 cores
    python bench/all.py --examples PATH/word_language_model   # with the anchor's sampling

    training    trainer vs a bare nn.LSTM loop           (train_throughput.py)
    sampling    nextchar vs a bare loop (vs generate.py)  (sampling.py)
    contention  busy / quiet for lab, train, sample       (contention.py)
    start-up    sample --length 1 vs import torch         (startup.py)
    budget      wall time of `train --max-time T` vs T    (here)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(script: str, *args: str) -> None:
    print(f"\n## {script} {' '.join(args)}".rstrip(), flush=True)
    subprocess.run([sys.executable, str(HERE / script), *args], check=True)


def budget(seconds: float) -> None:
    """`nextchar train FILE --max-time T`: the command's wall time against T."""
    print(f"\n## budget: nextchar train --max-time {seconds:.0f}s", flush=True)
    with tempfile.TemporaryDirectory(prefix="budget-") as tmp:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "nextchar", "train", "shakespeare",
             "--val-file", "shakespeare:val", "--max-time", str(seconds),
             "--quiet", "--out", str(Path(tmp) / "run")],
            check=True, capture_output=True,
        )  # fmt: skip
        wall = time.perf_counter() - started
    print("| budget s | wall s (the whole command) | overrun |\n|---:|---:|---:|")
    print(f"| {seconds:.0f} | {wall:.1f} | {wall / seconds - 1:+.1%} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps, a 60 s budget")
    ap.add_argument("--examples", help="word_language_model folder: the anchor's sampling")
    args = ap.parse_args()
    steps = ["--steps", "4", "--chars", "500000"] if args.quick else []
    run("train_throughput.py", *steps)
    run("sampling.py", *(["--examples", args.examples] if args.examples else []))
    run("contention.py")
    run("startup.py")
    budget(60.0 if args.quick else 120.0)


if __name__ == "__main__":
    main()
