"""What listens to a training run: the progress bar, metrics.jsonl, the checkpoints (best/ and
a resumable last/) and curves.png. The loop (loop.py) decides everything -- the step, the best
score -- and tells the listeners; each turns the events into one kind of output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from nextchar.core.outputs import replacing
from nextchar.display.figures import figure, hangul_fonts
from nextchar.display.progress import progress as progress_bar
from nextchar.inference.evaluate import bits
from nextchar.models.checkpoint import save_checkpoint
from nextchar.training.resume import save_last
from nextchar.training.state import Run


class Listener(Protocol):
    def stepped(self, run: Run) -> None: ...
    def logged(self, run: Run, row: dict[str, Any]) -> None: ...
    def evaluated(
        self, run: Run, val_bpc: float | None, improved: bool, elapsed: float
    ) -> None: ...
    def ended(self, run: Run) -> None: ...


class Quiet:
    """A listener that ignores everything: subclasses keep the events they need."""

    def stepped(self, run: Run) -> None:
        pass

    def logged(self, run: Run, row: dict[str, Any]) -> None:
        pass

    def evaluated(self, run: Run, val_bpc: float | None, improved: bool, elapsed: float) -> None:
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

    def evaluated(self, run: Run, val_bpc: float | None, improved: bool, elapsed: float) -> None:
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

    def evaluated(self, run: Run, val_bpc: float | None, improved: bool, elapsed: float) -> None:
        if val_bpc is not None:
            self.write(step=run.step, val_bpc=val_bpc)

    def ended(self, run: Run) -> None:
        title = f"{run.run_dir.name}: {run.model.describe()}, {run.meta['parameters']:,} parameters"
        plot_curves(self, run.run_dir / "curves.png", title)


def plot_curves(metrics: Metrics, path: Path, title: str) -> None:
    """Training and validation curves in bits, as a PNG (Hangul in a run's name shows)."""
    with hangul_fonts():
        fig = figure(figsize=(7, 4), dpi=120)
        ax = fig.subplots()
        if metrics.train:
            steps, losses = zip(*metrics.train, strict=True)
            ax.plot(
                steps, [bits(v) for v in losses], lw=1, alpha=0.7, label="train (bits per token)"
            )
        if metrics.val:
            steps, values = zip(*metrics.val, strict=True)
            ax.plot(steps, values, "o-", lw=2, ms=3, label="validation (bits per character)")
        ax.set_xlabel("step")
        ax.set_ylabel("bits")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        with replacing(path) as tmp:  # a crash mid-write keeps the last whole plot
            fig.savefig(tmp)


class Checkpoints(Quiet):
    """After every evaluation: `best/` if it improved, and always a resumable `last/`."""

    def evaluated(self, run: Run, val_bpc: float | None, improved: bool, elapsed: float) -> None:
        info = {**run.meta, "step": run.step, "val_bpc": val_bpc}
        if improved:
            save_checkpoint(run.run_dir / "best", run.model, run.corpus.tokenizer, info)
        save_last(run, info, elapsed)  # every process takes part; the main one writes
