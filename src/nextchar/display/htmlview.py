"""How results look in Jupyter: small HTML fragments for `_repr_html_` (tables, bars, a
monospace trace, an embedded PNG). Strings in, strings out; nothing here imports torch.
Each fragment also carries its plain text for screen readers and copying."""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

MONO = "font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace"


def pre(text: str) -> str:
    # pre-wrap: a long model line wraps in a narrow notebook instead of running off the side
    style = f"{MONO}; line-height: 1.35; margin: 0.3em 0; white-space: pre-wrap"
    return f'<pre style="{style}">{escape(text)}</pre>'


def table(header: list[str], rows: list[list[str]]) -> str:
    """An HTML table of monospace text, left-aligned (names, notations, shapes)."""

    def cells(tag: str, values: list[str]) -> str:
        style = f"text-align: left; {MONO}"
        return "".join(f'<{tag} style="{style}">{escape(v)}</{tag}>' for v in values)

    body = "".join(f"<tr>{cells('td', r)}</tr>" for r in rows)
    return f"<table><thead><tr>{cells('th', header)}</tr></thead><tbody>{body}</tbody></table>"


def bars(candidates: list[tuple[str, float]], width_px: int = 240) -> str:
    """One row per (label, probability): the label, the percentage, a bar scaled to the top."""
    top = max((p for _, p in candidates), default=1.0) or 1.0
    rows = "".join(
        f'<tr><td style="text-align: right; padding: 0 0.5em; {MONO}">{escape(label)}</td>'
        f'<td style="text-align: right; padding: 0 0.5em; {MONO}">{p:.1%}</td>'
        f'<td><div style="background: #4c72b0; height: 0.9em; '
        f'width: {max(1, round(width_px * p / top))}px"></div></td></tr>'
        for label, p in candidates
    )
    return f"<table>{rows}</table>"


def png(path: Path, alt: str) -> str:
    """The image inline (base64), so the notebook keeps it after the run directory is gone."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}" style="max-width: 100%">'


def marked(prediction: str, target: str) -> str:
    """The prediction with each character that differs from the target's highlighted."""
    out = []
    for i, ch in enumerate(prediction):
        if i < len(target) and ch == target[i]:
            out.append(escape(ch))
        else:
            out.append(f'<span style="background: #f4c7c3">{escape(ch)}</span>')
    return "".join(out)


def text_heat(tokens: list[str], values: list[float]) -> str:
    """The text with each token on a colour for its value: red above zero, blue below, as
    strong as its size against the largest (Karpathy's view of one LSTM cell)."""
    scale = max((abs(v) for v in values), default=1.0) or 1.0
    spans = []
    for token, value in zip(tokens, values, strict=True):
        alpha = min(1.0, abs(value) / scale)
        rgb = "214, 39, 40" if value > 0 else "31, 119, 180"
        shown = escape(token).replace("\n", "↵\n")
        spans.append(f'<span style="background: rgba({rgb}, {alpha:.2f})">{shown}</span>')
    style = f"{MONO}; white-space: pre-wrap; line-height: 1.6"
    return f'<div style="{style}">{"".join(spans)}</div>'
