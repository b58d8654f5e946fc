"""kill -9 against training: a run is killed at random moments -- during start-up, a step, an
evaluation, and (every third kill) exactly between the two renames of a checkpoint save --
and after every kill the run must still load and resume.

    python bench/faults.py [--kills 20] [--seed 0]

Prints one line per kill and a summary: kills / resumable / loadable. Each check works on a
copy of the run, so the next kill hits the run as the previous one left it. Not a test: it
takes a few minutes and depends on the machine's timing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The child: the real `nextchar train`, with the checkpoint module's os.rename wrapped so the
# process stops for a minute right after moving the old checkpoint aside -- the moment a
# crash leaves `last/` missing and `last.old/` holding the only copy.
CHILD = """
import os, sys, time
from pathlib import Path
import nextchar.models.checkpoint as checkpoint
from nextchar.cli import main

mark = Path(sys.argv[1])

class PausingOs:
    def __getattr__(self, name):
        return getattr(os, name)

    def rename(self, src, dst):
        os.rename(src, dst)
        if str(dst).endswith(".old") and os.environ.get("PAUSE_IN_SAVE"):
            mark.write_text(str(dst))
            time.sleep(60)

checkpoint.os = PausingOs()
sys.exit(main(sys.argv[2:]))
"""

TRAIN = [
    "--cell", "gru", "--hidden-size", "64", "--embedding-dim", "32", "--batch-size", "8",
    "--seq-len", "32", "--eval-every", "5", "--eval-tokens", "2000", "--max-steps", "100000",
    "--device", "cpu", "--quiet",
]  # fmt: skip


def corpus(path: Path, seed: int) -> None:
    rng = random.Random(seed)
    words = ["my", "lord", "lady", "the", "king", "queen", "love", "night", "day", "sweet"]
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 9))) for _ in range(8000)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def saved_step(run: Path) -> int | None:
    for name in ("last", "last.old"):
        state = run / name / "trainer_state.json"
        if state.exists():
            return int(json.loads(state.read_text())["step"])
    return None


def start(work: Path, run: Path, text: Path, pause: bool) -> subprocess.Popen:
    mark = work / "paused"
    mark.unlink(missing_ok=True)
    has_run = saved_step(run) is not None
    args = ["train", "--resume", str(run)] if has_run else ["train", str(text), "--out", str(run)]
    args += [] if has_run else TRAIN
    env = {"PAUSE_IN_SAVE": "1"} if pause else {}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(mark), *args],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def check(run: Path, scratch: Path) -> tuple[bool, bool, int | None]:
    """(loadable, resumable, step) of the run as the kill left it, on a copy."""
    step = saved_step(run)
    if step is None:
        return False, False, None
    copy = scratch / "copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(run, copy)
    probe = (
        "from nextchar.models import load; m, t = load(__import__('sys').argv[1], 'cpu');"
        "print(t.vocab_size)"
    )
    loaded = subprocess.run([sys.executable, "-c", probe, str(copy)], capture_output=True)
    resumed = subprocess.run(
        [sys.executable, "-m", "nextchar", "train", "--resume", str(copy), "--max-steps",
         str(step + 2)],
        capture_output=True,
        text=True,
    )  # fmt: skip
    left = [p.name for p in copy.iterdir() if p.name.endswith((".tmp", ".old"))]
    return loaded.returncode == 0, resumed.returncode == 0 and not left, step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="nextchar-faults-"))
    text, run = work / "text.txt", work / "run"
    corpus(text, args.seed)
    totals = {"kills": 0, "in a save": 0, "resumable": 0, "loadable": 0, "nothing saved": 0}
    print(f"{'kill':>4}  {'when':<22} {'step':>6}  loadable  resumable")
    for i in range(args.kills):
        in_save = i % 3 == 2
        child = start(work, run, text, pause=in_save)
        if in_save:
            deadline = time.monotonic() + 120
            while not (work / "paused").exists() and time.monotonic() < deadline:
                if child.poll() is not None:
                    break
                time.sleep(0.05)
            when = "between the renames" if (work / "paused").exists() else "save never came"
        else:
            delay = rng.uniform(1.0, 8.0)
            time.sleep(delay)
            when = f"after {delay:.1f} s"
        if child.poll() is not None:
            raise SystemExit(f"the child ended before the kill: {child.stderr.read()[-500:]}")
        child.send_signal(signal.SIGKILL)
        child.wait()
        loadable, resumable, step = check(run, work)
        totals["kills"] += 1
        totals["in a save"] += in_save
        totals["loadable"] += loadable
        totals["resumable"] += resumable
        totals["nothing saved"] += step is None
        shown = "-" if step is None else step
        yes = {True: "yes", False: "NO"}
        print(f"{i + 1:>4}  {when:<22} {shown:>6}  {yes[loadable]:<9} {yes[resumable]}", flush=True)
    print()
    print(" | ".join(f"{k} {v}" for k, v in totals.items()))
    saved = totals["kills"] - totals["nothing saved"]
    broken = saved - min(totals["loadable"], totals["resumable"])
    print("every saved run loads and resumes" if broken == 0 else f"{broken} kill(s) broke the run")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
