"""What a request may ask of the server: size limits and valid text. No web framework here, so
`nextchar chat` shares the limits without needing FastAPI."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

# Request limits: a page on 127.0.0.1 is still a server; long inputs cost seconds of CPU.
MAX_TEXT = 4000  # characters of text to predict from or score
MAX_CELL_TEXT = 1500  # characters stepped one token at a time for the cell view
MAX_GENERATE = 2000  # tokens per continuation
MAX_TOP = 100
# The largest request body: 4,000 characters of 4 UTF-8 bytes, JSON-escaped, with the rest of
# the fields. Bodies past it are refused before they are read whole, let alone parsed.
MAX_BODY = 64 * 1024
# Names a browser may use for a server on this machine. Any other Host header is refused
# (DNS rebinding: a page from evil.example whose name is made to resolve to 127.0.0.1 would
# otherwise reach a loopback server as if it were the user).
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def valid_text(value: str) -> str:
    """JSON can carry a lone UTF-16 surrogate ("\\ud800"), which is no character and breaks
    every encoder downstream: refuse it as a bad request."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"position {exc.start} holds a lone surrogate (U+{ord(value[exc.start]):04X}), "
            "which is not a character; send valid Unicode text"
        ) from None
    return value


class Busy(Exception):
    """Every slot for heavy work is taken: answer 503 with Retry-After."""


class Pool:
    """Heavy work (a model run over a text) in a bounded pool with a short line: at most
    `running` requests at once and `waiting` more in line; past that a request is refused at
    once, so light requests (the model list, the page) never wait behind a crowd."""

    def __init__(self, running: int | None = None, waiting: int = 8) -> None:
        from nextchar.core.runtime import cpu_cores  # torch: only where a pool is made

        running = running or min(4, cpu_cores())
        self.running, self.waiting = running, waiting
        self._line = threading.BoundedSemaphore(running + waiting)
        self._run = threading.Semaphore(running)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        if not self._line.acquire(blocking=False):
            raise Busy
        try:
            with self._run:
                yield
        finally:
            self._line.release()
