"""What a training run returns: its numbers, and how the command and a notebook show them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from nextchar.core.options import flag
from nextchar.display import htmlview
from nextchar.display.terminal import plural


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    best_val_bpc: float
    final_val_bpc: float  # the best checkpoint on the validation text (see final_val_tokens)
    seconds: float
    chars_per_second: float
    interrupted: bool
    parameters: int
    unit: str  # what one token is: character, byte, word
    val_chars_per_token: float
    final_val_tokens: int  # validation tokens final_val_bpc scored
    val_tokens: int  # all of them
    val_source: str | None = None  # the validation text's file or corpus name, if it has one

    @property
    def final_val_perplexity(self) -> float:
        """exp(nats per token) on the validation text: per word for a word model."""
        return math.exp(self.final_val_bpc * math.log(2) * self.val_chars_per_token)

    def summary(self) -> list[str]:
        """What `nextchar train` prints at the end."""
        status = "interrupted" if self.interrupted else "done"
        lines = [
            f"{status}: {plural(self.step, 'step')} in {self.seconds:.0f} s, "
            f"{self.chars_per_second:,.0f} characters/s, {self.parameters:,} parameters"
        ]
        if self.interrupted:
            return [
                *lines,
                f"saved {self.run_dir / 'last'}; continue with: nextchar train "
                f"{flag('resume', command_line=True)} "
                f"{self.run_dir}",
            ]
        scored = (
            "whole validation text"
            if self.final_val_tokens >= self.val_tokens
            else f"first {self.final_val_tokens:,} of {self.val_tokens:,} validation tokens: "
            "the time budget left no room for all; "
            + (
                f"nextchar eval {self.run_dir} {self.val_source} scores it all"
                if self.val_source
                # a cut of the training text: no file holds it to name
                else f"a larger {flag('max_time')} scores it all"
            )
        )
        return [
            *lines,
            f"validation: best {self.final_val_bpc:.4f} bits per character, perplexity "
            f"{self.final_val_perplexity:.2f} per {self.unit} ({scored}, best checkpoint)",
            f"run directory: {self.run_dir}  (best/, last/, metrics.jsonl, curves.png)",
            f"next: nextchar sample {self.run_dir} {flag('length', command_line=True)} 300",
        ]

    def __str__(self) -> str:
        return "\n".join(self.summary())

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        curves = self.run_dir / "curves.png"
        plot = htmlview.png(curves, "training curves") if curves.is_file() else ""
        return htmlview.pre(str(self)) + plot
