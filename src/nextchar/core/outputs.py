"""Files a command writes for the user (a chart, an exported model, an experiment's results):
nothing of the user's is replaced without `overwrite`, a default name is numbered when taken,
and a file is whole or absent -- written beside its place and renamed into it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from nextchar.core.errors import NextcharError
from nextchar.core.options import flag

OVERWRITE_HELP = "replace files of the same name that this command writes"


def numbered(path: Path, taken: Callable[[Path], bool] = Path.exists) -> Path:
    """`path`, or path-2, path-3 ... (before the suffix) when it is taken: for default names,
    so a second run writes beside the first."""
    candidate, n = path, 1
    while taken(candidate):
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def check_new(paths: Iterable[Path], overwrite: bool) -> None:
    """Refuse, before any work, to write over a file the user has, unless asked to."""
    for path in paths:
        if path.is_dir():
            raise NextcharError(f"{path} is a directory; name a file to write")
        if path.exists() and not overwrite:
            raise NextcharError(
                f"{path} exists; add {flag('overwrite')} to replace it, or choose another name"
            )


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` (same suffix, so a plot keeps its format) that becomes
    `path` when the block ends without error; on an error it is removed and `path` untouched."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
