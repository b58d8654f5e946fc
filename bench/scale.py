"""Does the cost of a text grow linearly with it? For texts of growing size (the Shakespeare
corpus repeated), `nextchar train FILE --max-steps 1` is timed to its first step, and its
peak memory is read from the kernel. Not a test: it writes up to a few hundred MB to a
temporary folder and takes minutes.

    python bench/scale.py [--sizes 1 10 100 200]

Prints per size: seconds from start to the first step (reading, encoding, building), peak
resident memory, and both per MB of text (flat when linear); the goal is peak memory <= 3x the
text's size plus the model and torch itself (the 1 MB row).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
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
    args = ap.parse_args()
    base = read_text("shakespeare").encode("utf-8")
    rows = []
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        for mb in args.sizes:
            text = Path(tmp) / f"text-{mb:g}MB.txt"
            size = int(mb * 1e6)
            with text.open("wb") as f:
                for _ in range(size // len(base)):
                    f.write(base)
                f.write(base[: size % len(base)].decode("utf-8", "ignore").encode("utf-8"))
            run = Path(tmp) / f"run-{mb:g}"
            cmd = [sys.executable, "-m", "nextchar", "train", str(text), "--max-steps", "1",
                   "--val-file", "shakespeare:val", "--eval-tokens", "2000", "--quiet",
                   "--out", str(run)]  # fmt: skip
            done = subprocess.run([sys.executable, "-c", MEASURE, *cmd], check=True,
                                  capture_output=True, text=True)  # fmt: skip
            peak_mb = int(done.stdout.split()[-1]) / 1024  # ru_maxrss is in KiB on Linux
            first = [json.loads(line) for line in (run / "metrics.jsonl").open()]
            to_step = next(r["elapsed"] for r in first if "loss" in r)
            rows.append((text.stat().st_size / 1e6, to_step, peak_mb))
            text.unlink()
    base_peak = rows[0][2]
    print("| text MB | seconds to the first step | s per MB | peak memory MB | "
          "(peak − the smallest row's) / text size |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|")
    for mb, seconds, peak in rows:
        extra = (peak - base_peak) / (mb - rows[0][0]) if mb > rows[0][0] else float("nan")
        print(f"| {mb:,.0f} | {seconds:.1f} | {seconds / mb:.3f} | {peak:,.0f} | {extra:.2f} |")


if __name__ == "__main__":
    main()
