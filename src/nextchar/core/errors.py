"""The one place that talks to the user about what went wrong: the one exception type (a
line that says what is wrong and how to fix it; the CLI prints it without a traceback, and
anything else is a bug that keeps its traceback), and the messages more than one part needs."""

from __future__ import annotations

import errno
import importlib
from typing import Any

from nextchar.core.options import flag


class NextcharError(ValueError):
    """Bad input or configuration, explained in one line."""


def optional(module: str, needed_for: str, extra: str, packages: str | None = None) -> Any:
    """Import an optional dependency, or say in one line which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise NextcharError(
            f"{needed_for} needs {packages or module}, which is not installed: "
            f'pip install "nextchar[{extra}]"'
        ) from None


def broken_weights(what: str) -> NextcharError:
    """The error for numbers that are not finite because the weights are not: they come from
    a training run that diverged."""
    return NextcharError(
        f"{what} hold NaN or infinity: the weights are broken, usually by a training run "
        f"that diverged; train again with a lower {flag('lr')}"
    )


# What the operating system's refusals mean to the person who ran the command.
_IO_HINTS = {
    errno.ENOSPC: "the disk is full: free some space and run it again (checkpoints already "
    "saved are whole; a training run continues with resume)",
    errno.EACCES: "permission denied: choose a place you may use, or change its permissions",
    errno.EPERM: "not permitted: choose a place you may use, or change its permissions",
    errno.EROFS: "the file system is read-only: choose a place you may write",
    errno.EISDIR: "a directory stands where a file is needed: give a file's name",
    errno.ENOTDIR: "a file stands where a directory is needed",
    errno.EEXIST: "a file stands where a directory is needed: give another name",
    errno.ENOENT: "no such file or directory (was it moved or deleted while nextchar ran?)",
    errno.EDQUOT: "the disk quota is used up: free some space and run it again",
}


def io_error(exc: OSError) -> str:
    """The one line for an operating-system error: the path, what happened, what to do."""
    where = exc.filename or "a file"
    hint = _IO_HINTS.get(exc.errno or 0, exc.strerror or type(exc).__name__)
    return f"{where}: {hint}"
