"""Start-up to the first sampled character: `nextchar sample RUN --length 1` for an LSTM 2x256
beside `python -c "import torch"`, alternated in one run (medians of 5). Not a test.
Target: nextchar within torch's import + 0.5 s (loading the checkpoint, building the model,
priming and one step).

    python bench/startup.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nextchar.text.data import read_text


def timed(cmd: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


def measure(repeats: int = 5) -> tuple[float, float]:
    """(median seconds of importing torch, of sampling one character)."""
    with tempfile.TemporaryDirectory(prefix="startup-") as tmp:
        root = Path(tmp)
        text = root / "text.txt"
        text.write_text(read_text("shakespeare")[:50_000])
        subprocess.run(
            [sys.executable, "-m", "nextchar", "train", str(text), "--cell", "lstm",
             "--hidden-size", "256", "--max-steps", "1", "--quiet", "--out", "run"],
            cwd=root, check=True, capture_output=True,
        )  # fmt: skip
        torch_s, sample_s = [], []
        for _ in range(repeats):
            torch_s.append(timed([sys.executable, "-c", "import torch"], root))
            sample_s.append(
                timed([sys.executable, "-m", "nextchar", "sample", "run", "--length", "1"], root)
            )
    return statistics.median(torch_s), statistics.median(sample_s)


def main() -> None:
    torch_s, sample_s = measure()
    print("| command | median s |\n|---|---:|")
    print(f"| python -c 'import torch' | {torch_s:.2f} |")
    print(f"| nextchar sample RUN --length 1 (LSTM 2x256) | {sample_s:.2f} |")
    print(f"nextchar beyond the torch import: {sample_s - torch_s:+.2f} s (target <= 0.5 s)")


if __name__ == "__main__":
    main()
