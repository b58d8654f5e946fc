"""The one place that talks to the user about what went wrong: the one exception type (a
line that says what is wrong and how to fix it; the CLI prints it without a traceback, and
anything else is a bug that keeps its traceback), and the messages more than one part needs."""

from __future__ import annotations

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
