"""Progress on long work, fit for where it is shown: a live bar on a terminal or in Jupyter;
in a log file or a pipe, a plain line now and then. A bar redrawn with carriage returns would
fill a log with thousands of updates on one endless line.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from typing import Any, TextIO

from tqdm import tqdm as plain_tqdm
from tqdm.auto import tqdm as auto_tqdm

LOG_EVERY = 30.0  # seconds between lines when the output is not a terminal


def _interactive(stream: TextIO) -> bool:
    # Jupyter's stderr is no terminal, but tqdm.auto draws a widget there
    return "ipykernel" in sys.modules or bool(getattr(stream, "isatty", lambda: False)())


class _Lines:
    """A file for tqdm that turns its redraws into whole lines, at most one per LOG_EVERY
    seconds, plus the last state when the bar closes."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.last = 0.0
        self.pending = ""

    def write(self, text: str) -> None:
        text = text.replace("\r", "").replace("\x1b[A", "").strip()
        if text:
            self.pending = text
        if self.pending and time.monotonic() - self.last >= LOG_EVERY:
            self.flush_line()

    def flush_line(self) -> None:
        if self.pending:
            self.stream.write(self.pending + "\n")
            self.stream.flush()
            self.pending = ""
        self.last = time.monotonic()

    def flush(self) -> None:
        self.stream.flush()


def progress(iterable: Any = None, *, enabled: bool = True, **kwargs: Any) -> Any:
    """tqdm over `iterable` (or for manual `update`s with total=...). Off when not `enabled`;
    in a file or pipe, a line per LOG_EVERY seconds and the final state."""
    stream = sys.stderr
    if not enabled:
        return plain_tqdm(iterable, disable=True, **kwargs)
    if _interactive(stream):
        # tqdm.auto's Jupyter widget needs ipywidgets, and without it fails when the bar
        # is made; the text bar redraws fine in a notebook's output too
        widget = importlib.util.find_spec("ipywidgets") is not None
        bar = auto_tqdm if widget else plain_tqdm
        return bar(iterable, dynamic_ncols=True, **kwargs)
    lines = _Lines(stream)
    bar = _LoggedBar(iterable, file=lines, ncols=100, ascii=True, mininterval=LOG_EVERY, **kwargs)
    bar.lines = lines
    return bar


class _LoggedBar(plain_tqdm):  # type: ignore[misc]
    lines: _Lines

    def close(self) -> None:
        if not self.disable:
            # the end state, whenever the last line was written; also for a bar that a
            # terminal would erase (leave=False): in a log, "eval 0/63" must not be the last word
            self.refresh()
            self.lines.flush_line()
        super().close()
