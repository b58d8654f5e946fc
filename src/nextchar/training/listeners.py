"""A run directory and what listens to a training run: the progress bar, metrics.jsonl, the
checkpoints (best/ and a resumable last/) and curves.png. The loop in training.py emits events;
each listener here turns them into one kind of output, so the loop itself writes nothing.

    RUN/last/         resumable: weights, optimizer, carried state, RNG (checkpoint.py)
    RUN/best/         lowest validation bpc so far
    RUN/metrics.jsonl one JSON object per logged step and per evaluation
    RUN/curves.png    training and validation bits
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch

from nextchar.core.errors import NextcharError
from nextchar.display.figures import figure, hangul_fonts
from nextchar.display.progress import progress as progress_bar
from nextchar.inference.evaluate import bits
from nextchar.models import state_tensors
from nextchar.models.checkpoint import save_checkpoint
from nextchar.training import distributed as dist

if TYPE_CHECKING:
    from nextchar.training.session import Run

CHECKPOINT_NAMES = ("best", "last", "best.old", "last.old")


class Listener(Protocol):
    def stepped(self, run: Run) -> None: ...
    def logged(self, run: Run, row: dict[str, Any]) -> None: ...
    def evaluated(self, run: Run, val_bpc: float | None, elapsed: float) -> None: ...
    def ended(self, run: Run) -> None: ...


class Quiet:
    """A listener that ignores everything: subclasses keep the events they need."""

    def stepped(self, run: Run) -> None:
        pass

    def logged(self, run: Run, row: dict[str, Any]) -> None:
        pass

    def evaluated(self, run: Run, val_bpc: float | None, elapsed: float) -> None:
        pass

    def ended(self, run: Run) -> None:
        pass


class ProgressBar(Quiet):
    def __init__(self, run: Run, enabled: bool) -> None:
        total = run.config.max_steps
        self.bar = progress_bar(
            total=total, initial=run.step, enabled=enabled, unit="step", desc=run.run_dir.name
        )
        self.val = "-"

    def stepped(self, run: Run) -> None:
        self.bar.update(1)

    def logged(self, run: Run, row: dict[str, Any]) -> None:
        self.bar.set_postfix_str(
            f"loss {row['loss']:.3f}  val {self.val} bpc  {row['chars_per_sec']:,.0f} char/s",
            refresh=False,
        )

    def evaluated(self, run: Run, val_bpc: float | None, elapsed: float) -> None:
        if val_bpc is not None:
            self.val = f"{val_bpc:.3f}"

    def ended(self, run: Run) -> None:
        self.bar.close()


def _metrics_row(line: str) -> dict[str, Any] | None:
    """One metrics.jsonl line as a dict with an integer step, or None if it is not one."""
    try:
        row = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(row, dict) or not isinstance(row.get("step"), int):
        return None
    numbers = [row.get(k) for k in ("loss", "val_bpc") if k in row]
    return row if all(isinstance(v, (int, float)) for v in numbers) else None


class Metrics(Quiet):
    """Appends one JSON object per line to metrics.jsonl and keeps the curves for the plot
    (curves.png, at the end). Only the main process has one."""

    def __init__(self, path: Path, start_step: int) -> None:
        self.path = path
        self.train: list[tuple[int, float]] = []
        self.val: list[tuple[int, float]] = []
        if path.exists():  # resuming: keep history up to the resumed step only
            kept = []
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                row = _metrics_row(line)
                # a line cut short by a kill, or blank, or edited by hand: history, not state
                if row is not None and row["step"] <= start_step:
                    kept.append(line)
                    self._remember(row)
            path.write_text("".join(k + "\n" for k in kept))

    def _remember(self, row: dict[str, Any]) -> None:
        if "loss" in row:
            self.train.append((row["step"], row["loss"]))
        if "val_bpc" in row:
            self.val.append((row["step"], row["val_bpc"]))

    def write(self, **row: Any) -> None:
        self._remember(row)
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")

    def logged(self, run: Run, row: dict[str, Any]) -> None:
        self.write(**row)

    def evaluated(self, run: Run, val_bpc: float | None, elapsed: float) -> None:
        if val_bpc is not None:
            self.write(step=run.step, val_bpc=val_bpc)

    def ended(self, run: Run) -> None:
        title = f"{run.run_dir.name}: {run.model.describe()}, {run.meta['parameters']:,} parameters"
        plot_curves(self, run.run_dir / "curves.png", title)


def plot_curves(metrics: Metrics, path: Path, title: str) -> None:
    """Training and validation curves in bits, as a PNG (Hangul in a run's name shows)."""
    with hangul_fonts():
        _plot_curves(metrics, path, title)


def _plot_curves(metrics: Metrics, path: Path, title: str) -> None:
    fig = figure(figsize=(7, 4), dpi=120)
    ax = fig.subplots()
    if metrics.train:
        steps, losses = zip(*metrics.train, strict=True)
        ax.plot(steps, [bits(v) for v in losses], lw=1, alpha=0.7, label="train (bits per token)")
    if metrics.val:
        steps, values = zip(*metrics.val, strict=True)
        ax.plot(steps, values, "o-", lw=2, ms=3, label="validation (bits per character)")
    ax.set_xlabel("step")
    ax.set_ylabel("bits")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


class Checkpoints(Quiet):
    """After every evaluation: `best/` if it improved, and always a resumable `last/`. Every
    process takes part (the carried state and RNG of all are saved); the main one writes."""

    def evaluated(self, run: Run, val_bpc: float | None, elapsed: float) -> None:
        # Saved at a step boundary: the RNG state is the one the next step starts from, so
        # dropout masks after a resume are those of an uninterrupted run. The carried state is
        # gathered where it lives (NCCL moves GPU tensors only), then kept on the CPU.
        group, cuda = run.group, run.device.type == "cuda"
        carry = [dist.gather_rows(group, s, dim=1).cpu() for s in state_tensors(run.carry)]
        rng_cpu = dist.gather_bytes(group, torch.get_rng_state())
        rng_cuda = dist.gather_bytes(group, torch.cuda.get_rng_state(run.device)) if cuda else None
        if val_bpc is None:  # not the main process
            return
        info = {**run.meta, "step": run.step, "val_bpc": val_bpc}
        tokenizer = run.corpus.tokenizer
        if val_bpc < run.best:
            run.best = val_bpc
            save_checkpoint(run.run_dir / "best", run.model, tokenizer, info)
        resume_blob = {
            "optimizer": run.optimizer.state_dict(),
            "carry": carry,  # [layers, global batch, units]: the layout of one process
            "rng_cpu": rng_cpu[0],
            "rng_cuda": rng_cuda[0] if rng_cuda else None,
            "rng_cpu_ranks": rng_cpu,
            "rng_cuda_ranks": rng_cuda,
        }
        state = {
            "step": run.step,
            "best_val_bpc": run.best,
            "elapsed": elapsed,
            "fingerprint": run.corpus.fingerprint,
        }
        save_checkpoint(run.run_dir / "last", run.model, tokenizer, info, resume_blob, state)


def check_new_run_dir(run_dir: Path) -> None:
    """A new run writes best/, last/, metrics.jsonl and curves.png into its directory, and a
    save replaces what has those names: it starts only in a new or empty directory, so
    nothing of the user's is ever overwritten."""
    if run_dir.exists() and not run_dir.is_dir():
        raise NextcharError(f"--out {run_dir} is a file; give a directory for the run")
    if not run_dir.is_dir():
        return
    if any((run_dir / name).exists() for name in ("last", "last.old")):
        raise NextcharError(
            f"{run_dir} already holds a run; continue it with --resume "
            f"{run_dir}, or choose another --out directory"
        )
    inside = sorted(p.name for p in run_dir.iterdir())
    if inside:
        shown = ", ".join(inside[:3]) + (f" and {len(inside) - 3} more" if len(inside) > 3 else "")
        raise NextcharError(
            f"{run_dir} is not empty (it holds {shown}); a new run needs a new or empty "
            "directory: choose another --out"
        )


def make_run_dir(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NextcharError(
            f"cannot create the run directory {run_dir} ({exc.strerror}); choose another --out"
        ) from None


def remove_unsaved_run(run_dir: Path, existed: bool) -> None:
    """A new run that failed before its first checkpoint (bad data, divergence at step 3)
    leaves its directory as it found it, so the same --out works on the next try. The
    directory was new or empty when the run began: everything in it is the run's own."""
    if not run_dir.is_dir() or any((run_dir / name).exists() for name in CHECKPOINT_NAMES):
        return
    for path in run_dir.iterdir():
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    if not existed:
        with contextlib.suppress(OSError):
            run_dir.rmdir()


def default_run_dir(files: list[str] | tuple[str, ...]) -> Path:
    """runs/<first file's name>, numbered if taken. A corpus split's colon (shakespeare:val)
    becomes a dash: Windows allows no colon in a directory name."""
    stem = Path(files[0]).stem.replace(":", "-") or "run"
    candidate, n = Path("runs") / stem, 1
    while candidate.exists():
        n += 1
        candidate = Path("runs") / f"{stem}-{n}"
    return candidate
