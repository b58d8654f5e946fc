"""The reference: PyTorch's word_language_model (pytorch/examples), unmodified, on character
data -- one token per character -- for a wall-clock budget. Not a test.

    python bench/anchor.py --examples PATH/TO/examples/word_language_model --budget 480

The text is written one character per "word" (a space becomes '▁', other white space
'<U+XXXX>', a line end the model's own <eos>), so its tokens are the characters and its loss
per token is nats per character. Configuration: the best one measured for it on characters,
LSTM 2x256, AdamW (--use-optimizer) lr 2e-3, dropout 0, bptt 64, batch 20, its other defaults.
main.py counts in epochs; it is stopped (Ctrl-C, which it handles: it then evaluates its best
saved model on test.txt, here the validation text) at its first progress line after the
budget has passed once it has finished an epoch -- later than the budget when one epoch takes
longer, which favours the anchor.
bits per character = ln(test perplexity) / ln 2, from the perplexity it prints (2 decimals).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nextchar.text.data import read_text

CONFIG = [
    *("--model", "LSTM", "--nhid", "256", "--nlayers", "2", "--use-optimizer"),
    *("--lr", "0.002", "--dropout", "0", "--bptt", "64", "--batch_size", "20"),
    *("--epochs", "1000", "--log-interval", "20"),  # a progress line every 25,600 chars
]


def char_tokens(text: str) -> str:
    def token(c: str) -> str:
        if c == " ":
            return "▁"
        return f"<U+{ord(c):04X}>" if c.isspace() else c

    return "".join(" ".join(token(c) for c in line) + "\n" for line in text.split("\n"))


def run_anchor(
    examples: Path, train: str, val: str, budget: float, threads: int | None = None
) -> dict[str, float]:
    """Train the anchor for `budget` seconds; its validation bpc, epochs, seconds, chars/s."""
    with tempfile.TemporaryDirectory(prefix="anchor-") as tmp:
        data = Path(tmp)
        val_text = read_text(val)
        (data / "train.txt").write_text(char_tokens(read_text(train)))
        (data / "valid.txt").write_text(char_tokens(val_text))
        (data / "test.txt").write_text(char_tokens(val_text))
        # its progress lines as they are printed, so that it is stopped at the right one
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        cmd = [sys.executable, "main.py", "--data", str(data), "--save", str(data / "m.pt")]
        started = time.perf_counter()
        # SIGINT back to its default in the child: a shell's background job ignores it, and
        # Python then installs no KeyboardInterrupt handler (the stop below would be lost)
        proc = subprocess.Popen(
            cmd + CONFIG, cwd=examples, stdout=subprocess.PIPE, text=True, env=env,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        lines, epochs, stopped = [], 0, False
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "end of epoch" in line:
                epochs += 1
            over = time.perf_counter() - started >= budget
            # Ctrl-C during training, never while it saves its model after an epoch
            if over and epochs and not stopped and line.startswith("| epoch"):
                proc.send_signal(signal.SIGINT)
                stopped = True
        proc.wait()
        seconds = time.perf_counter() - started
    output = "".join(lines)
    found = re.search(r"test ppl\s+([\d.]+)", output)
    if proc.returncode != 0 or not found:
        raise SystemExit(f"word_language_model failed (exit {proc.returncode}):\n{output[-2000:]}")
    train_chars = len(read_text(train))
    return {
        "val_bpc": math.log(float(found.group(1))) / math.log(2),
        "epochs": epochs,
        "seconds": seconds,
        "chars_per_second": train_chars * epochs / seconds,  # includes its evaluations
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", required=True, type=Path, help="word_language_model folder")
    ap.add_argument("--train", default="shakespeare", help="file or built-in corpus")
    ap.add_argument("--val", default="shakespeare:val", help="file or built-in corpus")
    ap.add_argument("--budget", type=float, default=480.0)
    args = ap.parse_args()
    r = run_anchor(args.examples, args.train, args.val, args.budget)
    print("| reference | epochs | seconds | chars/s | val bpc |\n|---|---:|---:|---:|---:|")
    print(
        f"| word_language_model LSTM 2x256 AdamW | {r['epochs']} | {r['seconds']:.0f} | "
        f"{r['chars_per_second']:,.0f} | {r['val_bpc']:.3f} |"
    )


if __name__ == "__main__":
    main()
