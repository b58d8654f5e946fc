"""Does `--max-time` hold on a shared machine? Each command trains with a time budget beside
one busy process (a `while True` loop) and the whole command is timed, start-up to exit. Not
a test: it takes a few minutes and depends on the machine.

    python bench/budgets.py [--budget 60] [--only default word gpt2-char gpt2-bpe]

Prints one row per command: the budget, the wall time, steps, and wall / budget (the target is
<= 1.10: the run's end -- one evaluation, the saves, the plot -- fits in its reserve).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import time
from pathlib import Path

from contention import busy, nextchar

RUNS = {
    "default": ["shakespeare"],
    "word": ["shakespeare", "--level", "word"],
    "gpt2-char": ["shakespeare", "--model", "gpt2"],
    "gpt2-bpe": ["shakespeare", "--model", "gpt2", "--tokenizer", "bpe", "--vocab-size", "1024"],
}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=60.0, help="seconds (--max-time)")
    ap.add_argument("--only", choices=list(RUNS), nargs="+", help="these rows alone")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="budgets-") as tmp:
        loop = busy()
        try:
            time.sleep(0.5)  # let it take its core
            for i, name in enumerate(args.only or RUNS):
                train = RUNS[name]
                cmd = nextchar("train", *train, "--max-time", f"{args.budget:g}", "--quiet")
                cmd += ["--out", str(Path(tmp) / f"run{i}")]
                started = time.perf_counter()
                done = subprocess.run(cmd, check=True, capture_output=True, text=True)
                wall = time.perf_counter() - started
                steps = re.search(r"done: ([\d,]+) step", done.stdout)
                rows.append((name, wall, steps.group(1) if steps else "?"))
        finally:
            loop.kill()
            loop.wait()
    print("| `nextchar train … --max-time` beside a busy process | budget s | wall s | steps "
          "| wall / budget |")  # fmt: skip
    print("|---|---:|---:|---:|---:|")
    for name, wall, steps in rows:
        print(f"| {name} | {args.budget:g} | {wall:.1f} | {steps} | {wall / args.budget:.2f} |")


if __name__ == "__main__":
    main()
