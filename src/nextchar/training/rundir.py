"""The run directory's rules: a new run starts only in a new or empty directory (nothing of the
user's is overwritten), a run that failed before its first save leaves no trace, and the
default name is runs/<first file's name>.

    RUN/last/         resumable: weights and the resume state (resume.py)
    RUN/best/         lowest validation bpc so far
    RUN/metrics.jsonl one JSON object per logged step and per evaluation
    RUN/curves.png    training and validation bits
    RUN/.lock         held by the one process writing the run (its PID inside)
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks here; one writer is then the user's care
    fcntl = None  # type: ignore[assignment]

from nextchar.core.errors import NextcharError
from nextchar.core.options import flag
from nextchar.core.outputs import numbered

CHECKPOINT_NAMES = ("best", "last", "best.old", "last.old")
LOCK = ".lock"


@contextlib.contextmanager
def one_writer(run_dir: Path) -> Iterator[None]:
    """Hold the run directory's lock for the run's life: a second `train` into it, or a
    resume of it while it trains, is refused with the holder's PID. The lock is the kernel's
    (flock): a writer killed with -9 leaves its .lock file behind but not the lock, so the
    next run takes it over."""
    make_run_dir(run_dir)
    if fcntl is None:
        yield
        return
    fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise NextcharError(
            f"{run_dir} is being written by another nextchar (process {holder}); wait for "
            f"it to end, or choose another {flag('out')}"
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def check_new_run_dir(run_dir: Path) -> None:
    """A new run writes best/, last/, metrics.jsonl and curves.png into its directory, and a
    save replaces what has those names: it starts only in a new or empty directory."""
    out = flag("out")
    if not run_dir.is_dir():  # new (a file there is make_run_dir's to refuse)
        return
    if any((run_dir / name).exists() for name in ("last", "last.old")):
        raise NextcharError(
            f"{run_dir} already holds a run; continue it with {flag('resume', run_dir)}, "
            f"or choose another {out} directory"
        )
    inside = sorted(p.name for p in run_dir.iterdir() if p.name != LOCK)
    if inside:
        shown = ", ".join(inside[:3]) + (f" and {len(inside) - 3} more" if len(inside) > 3 else "")
        raise NextcharError(
            f"{run_dir} is not empty (it holds {shown}); a new run needs a new or empty "
            f"directory: choose another {out}"
        )


def make_run_dir(run_dir: Path) -> None:
    if run_dir.exists() and not run_dir.is_dir():
        raise NextcharError(f"{flag('out', run_dir)} is a file; give a directory for the run")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NextcharError(
            f"cannot create the run directory {run_dir} ({exc.strerror}); choose another "
            f"{flag('out')}"
        ) from None


def remove_unsaved_run(run_dir: Path, existed: bool) -> None:
    """A new run that failed before its first checkpoint (bad data, divergence at step 3)
    leaves its directory as it found it, so the same directory works on the next try. It
    was new or empty when the run began: everything in it is the run's own."""
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
    return numbered(Path("runs") / (Path(files[0]).stem.replace(":", "-") or "run"))
