"""Every performance figure of README in one run, each beside its reference measured in the
same run. Not a test: machines are noisy; compare ratios, not absolute times.

    python bench/all.py --quick                      # about 4 minutes on 2 cores
    python bench/all.py --examples PATH/word_language_model   # with the anchor's sampling

    training    trainer vs a bare nn.LSTM loop           (train_throughput.py)
    sampling    nextchar vs a bare loop (vs generate.py)  (sampling.py)
    contention  busy / quiet for lab, train, sample       (contention.py)
    start-up    sample --length 1 vs import torch         (startup.py)
    budgets     wall time of `train --max-time T` vs T, beside a busy process  (budgets.py)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(script: str, *args: str) -> None:
    print(f"\n## {script} {' '.join(args)}".rstrip(), flush=True)
    subprocess.run([sys.executable, str(HERE / script), *args], check=True)


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
    run(
        "budgets.py",
        "--budget",
        "60" if args.quick else "120",
        *(["--only", "default"] if args.quick else []),
    )


if __name__ == "__main__":
    main()
