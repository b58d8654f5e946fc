"""How a tokenizer cuts a text: the `nextchar tokens` report."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np

from nextchar.display.terminal import shown
from nextchar.text.tokenizers.base import (
    Tokenizer,
)


@dataclass(frozen=True)
class TokenReport:
    """How a tokenizer cuts one text: the numbers behind "is this tokenizer a fit?"."""

    vocab_size: int
    unit: str
    chars: int  # NFC characters of the text
    tokens: int
    distinct: int  # vocabulary entries the text uses
    unknown: int  # units mapped to the unknown symbol
    partial: int  # tokens that are pieces of a character (byte fallback)
    most_frequent: list[tuple[str, int]]
    longest: list[str]

    @property
    def tokens_per_char(self) -> float:
        return self.tokens / max(1, self.chars)

    def lines(self, name: str) -> list[str]:
        """What `nextchar tokens` prints for the text called `name`."""
        frequent = "  ".join(f"{shown(t)} {n:,}" for t, n in self.most_frequent)
        return [
            f"{name}: {self.chars:,} characters -> {self.tokens:,} {self.unit}s",
            f"  vocabulary        {self.vocab_size:,} {self.unit}s ({self.distinct:,} used here)",
            f"  per character     {self.tokens_per_char:.3f} {self.unit}s",
            f"  byte pieces       {self.partial:,} ({self.partial / max(1, self.tokens):.1%} of "
            "tokens)",
            f"  unknown           {self.unknown:,} ({self.unknown / max(1, self.tokens):.1%})",
            f"  most frequent     {frequent}",
            f"  longest           {'  '.join(shown(t) for t in self.longest)}",
            *(f"  warning: {warning}" for warning in self.warnings()),
        ]

    def warnings(self) -> list[str]:
        """Plain-language reasons this tokenizer may be a poor fit for the text."""
        out = []
        if self.tokens_per_char > 1.0:
            out.append(
                f"{self.tokens_per_char:.2f} tokens per character: this tokenizer cuts the "
                "text's characters into pieces (as GPT-2's English BPE does with Hangul); "
                "each character costs several predictions"
            )
        if self.tokens and self.partial / self.tokens > 0.2:
            out.append(
                f"{self.partial / self.tokens:.0%} of the tokens are pieces of a character "
                "(byte fallback): the vocabulary has few merges for this text"
            )
        if self.tokens and self.unknown / self.tokens > 0.01:
            out.append(
                f"{self.unknown / self.tokens:.1%} of the {self.unit}s are outside the "
                "vocabulary and are all read as one unknown symbol"
            )
        return out


def token_report(tokenizer: Tokenizer, text: str, top: int = 10) -> TokenReport:
    """Count how `tokenizer` cuts `text`."""
    ids = tokenizer.encode_array(text)
    counts = np.bincount(ids, minlength=tokenizer.vocab_size) if ids.size else np.zeros(1)
    used = np.flatnonzero(counts)
    is_partial = getattr(tokenizer, "is_partial", None)
    partial_ids = {int(i) for i in used if is_partial is not None and is_partial(int(i))}
    order = sorted(used.tolist(), key=lambda i: (-int(counts[i]), i))
    whole = [int(i) for i in used if int(i) not in partial_ids]
    longest = sorted(whole, key=lambda i: (-len(tokenizer.token_text(i)), i))[:top]
    return TokenReport(
        vocab_size=tokenizer.vocab_size,
        unit=tokenizer.unit,
        chars=len(unicodedata.normalize("NFC", text)),
        tokens=int(ids.size),
        distinct=int(used.size),
        unknown=tokenizer.count_unknown(text),
        partial=int(sum(int(counts[i]) for i in partial_ids)),
        most_frequent=[(tokenizer.token_text(i), int(counts[i])) for i in order[:top]],
        longest=[tokenizer.token_text(i) for i in longest],
    )
