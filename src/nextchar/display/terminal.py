"""How tokens and distributions look in a terminal: the tables of `predict`, `chat`,
`neighbors` and `tokens`. Plain strings in, lines out; nothing here imports torch."""

from __future__ import annotations

from typing import Any


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
    width = max(len(shown(t)) for t, _ in prediction.candidates)
    top = prediction.candidates[0][1]
    for token, p in prediction.candidates:
        lines.append(f"  {shown(token):>{width}}  {p:6.1%}  {bar(p / top)}")
    return lines
