"""What a request may ask of the server: size limits and valid text. No web framework here, so
`nextchar chat` shares the limits without needing FastAPI."""

from __future__ import annotations

# Request limits: a page on 127.0.0.1 is still a server; long inputs cost seconds of CPU.
MAX_TEXT = 4000  # characters of text to predict from or score
MAX_CELL_TEXT = 1500  # characters stepped one token at a time for the cell view
MAX_GENERATE = 2000  # tokens per continuation
MAX_TOP = 100
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
