"""How tokens and distributions look in a terminal: the tables of `predict`, `chat`,
`neighbors` and `tokens`. Plain strings in, lines out; nothing here imports torch."""

from __future__ import annotations

import unicodedata
from typing import Any


def columns(text: str) -> int:
    """Terminal columns `text` takes: a wide character (a Hangul syllable, a CJK ideograph,
    most emoji) takes two, a combining mark none."""
    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in text
    )


def pad(text: str, width: int, right: bool = False) -> str:
    """`text` padded with spaces to `width` columns (on the left with `right`), counting
    display columns, not code points: a table of Hangul rows stays aligned."""
    fill = " " * max(0, width - columns(text))
    return fill + text if right else text + fill


def plural(count: int, word: str, words: str | None = None) -> str:
    """'1 step', '2 steps', '1,000 steps'."""
    return f"{count:,} {word if count == 1 else words or word + 's'}"


def shown(token: str) -> str:
    """A token as printed in a table: words and characters as they are; whitespace and
    control characters quoted, so a space or newline is visible."""
    return token if token.isprintable() and token.strip() == token and token else repr(token)


def bar(fraction: float, width: int = 30) -> str:
    """A horizontal bar for a fraction in [0, 1]; a sliver for anything that rounds to 0."""
    return "█" * max(0, round(width * fraction)) or "▏"


def prediction_lines(prediction: Any) -> list[str]:
    """The next-token table of a generate.Prediction: entropy, then one bar per candidate."""
    lines = []
    if prediction.unknown:
        lines.append(
            f"note: {prediction.unknown} {prediction.unit}(s) of the text are not in the "
            "vocabulary and are read as unknown"
        )
    lines.append(
        f"after {prediction.after[-40:]!r}: entropy {prediction.entropy_bits:.2f} bits "
        f"over {prediction.vocab_size:,} {prediction.unit}s"
    )
    width = max(columns(shown(t)) for t, _ in prediction.candidates)
    top = prediction.candidates[0][1]
    for token, p in prediction.candidates:
        lines.append(f"  {pad(shown(token), width, right=True)}  {p:6.1%}  {bar(p / top)}")
    return lines
