"""How nextchar shares a CPU: three commands, each timed alone and beside one busy process
(a `while True` loop, pinned to nothing), in one run; prints the busy/quiet ratio. Not a test.
On 2 cores a fair share gives a 2-thread job 2x at worst; the target is <= 1.6x.

    python bench/contention.py

    lab       nextchar lab (the notes' 500 epochs)
    train     nextchar train, the CPU default model, 30 steps (validation: 20,000 characters)
    sample    nextchar sample of 2,000 characters from the default model
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nextchar.text.data import read_text


def nextchar(*args: str) -> list[str]:
    return [sys.executable, "-m", "nextchar", *args]


def timed(cmd: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


def busy() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def measure(cmd: list[str], cwd: Path) -> tuple[float, float]:
    quiet = timed(cmd, cwd)
    shutil.rmtree(cwd / "t", ignore_errors=True)  # a training run needs a new directory
    loop = busy()
    try:
        time.sleep(0.5)  # let it take its core
        loaded = timed(cmd, cwd)
    finally:
        loop.kill()
        loop.wait()
    return quiet, loaded


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", default="shakespeare", help="file or built-in corpus")
    ap.add_argument("--val", default="shakespeare:val", help="file or built-in corpus")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="contention-") as tmp:
        root = Path(tmp)
        val = root / "val.txt"
        val.write_text(read_text(args.val)[:20_000], encoding="utf-8")
        train = [str(args.train), "--val-file", str(val), "--quiet", "--eval-every", "1000"]
        subprocess.run(nextchar("train", *train, "--max-steps", "1", "--out", "model"),
                       cwd=root, check=True, capture_output=True)  # fmt: skip
        runs = {
            "lab": nextchar("lab"),
            "train 30 steps": nextchar("train", *train, "--max-steps", "30", "--out", "t"),
            "sample 2,000 chars": nextchar("sample", "model", "--length", "2000"),
        }
        results = {}
        for name, cmd in runs.items():
            results[name] = measure(cmd, root)
    print("| command | quiet s | beside a busy process s | busy / quiet |")
    print("|---|---:|---:|---:|")
    for name, (quiet, loaded) in results.items():
        print(f"| {name} | {quiet:.1f} | {loaded:.1f} | {loaded / quiet:.2f} |")


if __name__ == "__main__":
    main()
