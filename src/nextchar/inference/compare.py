"""Compare models of any kind and tokenization on one text by bits per character -- the one
number they share -- with their size and evaluation speed, as a table and a bar chart."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from nextchar.core.errors import NextcharError
from nextchar.core.options import flag
from nextchar.core.outputs import check_new, replacing
from nextchar.display.figures import figure, hangul_fonts
from nextchar.inference.dynamic import DynamicConfig
from nextchar.inference.evaluate import EvalResult, evaluate_text
from nextchar.models import count_parameters, load
from nextchar.models.contract import DYNAMIC_EVAL


@dataclass(frozen=True)
class Row:
    name: str  # as given on the command line
    model: str  # "gru 2x384", "gpt2 4L 4H 128d"
    tokenizer: str  # "character, 65", "token, 50,257"
    parameters: int
    result: EvalResult
    seconds: float
    dynamic: EvalResult | None = None  # adapting while scoring (dynamic.py), if asked for

    @property
    def chars_per_second(self) -> float:
        return self.result.chars / max(self.seconds, 1e-9)


def compare(
    references: list[str],
    text: str,
    device: str = "auto",
    stride: int | None = None,
    dynamic: DynamicConfig | None = None,
) -> list[Row]:
    """Evaluate each checkpoint, run directory or GPT-2 on `text`; rows in the given order.
    With `dynamic`, models that can adapt (recurrent checkpoints) are also evaluated that
    way; the others get no dynamic number."""
    rows = []
    for reference in references:
        model, tokenizer = load(reference, device)
        start = time.perf_counter()
        result = evaluate_text(model, tokenizer, text, stride=stride)
        seconds = time.perf_counter() - start
        adapted = None
        if dynamic is not None and DYNAMIC_EVAL in model.capabilities:
            adapted = evaluate_text(model, tokenizer, text, dynamic=dynamic)
        rows.append(
            Row(
                name=reference,
                model=model.describe(),
                tokenizer=f"{tokenizer.unit}, {tokenizer.vocab_size:,}",
                parameters=count_parameters(model),
                result=result,
                seconds=seconds,
                dynamic=adapted,
            )
        )
    return rows


def table(rows: list[Row]) -> str:
    """A Markdown table, best (lowest bits per character) first."""
    dynamic = any(r.dynamic is not None for r in rows)
    lines = [
        "| model | kind | tokens (unit, vocabulary) | parameters | bits per char "
        "| perplexity (per unit) | eval chars/s |" + (" dynamic eval bpc |" if dynamic else ""),
        "|---|---|---|---:|---:|---:|---:|" + ("---:|" if dynamic else ""),
    ]
    for r in sorted(rows, key=lambda r: r.result.bits_per_char):
        adapted = "" if not dynamic else f" {_bpc(r.dynamic)} |"
        lines.append(
            f"| {r.name} | {r.model} | {r.tokenizer} | {r.parameters:,} "
            f"| {r.result.bits_per_char:.3f} | {r.result.perplexity:.2f} "
            f"| {r.chars_per_second:,.0f} |{adapted}"
        )
    if dynamic:
        lines.append(
            "\ndynamic eval: the model adapts to the text as it scores it (Krause et al. "
            "2018), a different measurement from the static bits per character; - = the model "
            "cannot adapt"
        )
    if any(r.tokenizer.startswith("word") for r in rows):
        lines.append(
            "\nword models: a lower bound -- an unknown word costs only p(<unk>), and spaces "
            "are placed, not predicted"
        )
    return "\n".join(lines) + "\n"


def _bpc(result: EvalResult | None) -> str:
    return "-" if result is None else f"{result.bits_per_char:.3f}"


def plot(rows: list[Row], path: Path, title: str) -> Path:
    """A horizontal bar chart of bits per character (lower is better)."""
    with hangul_fonts():  # model names may be Korean
        ordered = sorted(rows, key=lambda r: r.result.bits_per_char, reverse=True)
        fig = figure(figsize=(7, 0.6 * len(rows) + 1.4), dpi=120)
        ax = fig.subplots()
        values = [r.result.bits_per_char for r in ordered]
        bars = ax.barh([f"{r.name}\n{r.model}" for r in ordered], values, color="#4c72b0")
        for bar, r in zip(bars, ordered, strict=True):
            ax.text(
                bar.get_width(),
                bar.get_y() + bar.get_height() / 2,
                f" {r.result.bits_per_char:.3f}  ({r.parameters / 1e6:.2f} M params)",
                va="center",
                fontsize=8,
            )
        ax.set_xlabel("bits per character (lower is better)")
        ax.set_xlim(0, max(values) * 1.45)
        ax.set_title(title, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        try:
            with replacing(path) as tmp:
                fig.savefig(tmp)  # inside the font context: text is laid out when drawn
        except (OSError, ValueError) as exc:  # unwritable place, or a format matplotlib lacks
            raise NextcharError(f"cannot write the chart to {path}: {exc}") from None
    return path


def check_chart_path(path: Path, overwrite: bool) -> None:
    """Fail before minutes of evaluation, not after: the chart's folder must be creatable, its
    name a picture format, and no file of the user's there unless `overwrite`."""
    check_new([path], overwrite)
    if path.suffix.lower() not in (".png", ".svg", ".pdf", ".jpg", ".jpeg"):
        raise NextcharError(f"{flag('out', path)}: name a .png, .svg, .pdf or .jpg file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NextcharError(f"cannot write the chart to {path} ({exc.strerror})") from None
