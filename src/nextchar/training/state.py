"""What one run owns between steps. The loop (loop.py) is the only code that changes it;
listeners read it to write their output."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from nextchar.core.config import TrainConfig
from nextchar.models import State
from nextchar.text.data import Batches, Corpus
from nextchar.training import distributed as dist

Log = Callable[[str], None]


@dataclass
class Clock:
    """Where the time goes: the budget plans the run's end from these measurements."""

    started: float = field(default_factory=time.perf_counter)
    elapsed_before: float = 0.0  # seconds spent before a resume
    step_seconds: float = 0.0  # time in optimizer steps this session: the training speed
    last_step_seconds: float = 0.0
    eval_rate: float = 0.0  # validation tokens per second, as last measured
    eval_seconds: float = 0.0  # the last periodic evaluation with its saves
    tokens: int = 0  # tokens trained on this session
    window: tuple[float, int] = (0.0, 0)  # (start, tokens) since the last metrics line

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.started


@dataclass
class Run:
    """A run: what it trains and on what (fixed when it opens), and where it is (step, best,
    the carried hidden state)."""

    config: TrainConfig
    run_dir: Path
    device: torch.device
    corpus: Corpus
    model: Any  # the LanguageModel itself: evaluated and saved
    trained: torch.nn.Module  # what the steps run: the model, or DDP/compile around it
    group: dist.Group
    optimizer: torch.optim.Optimizer
    batches: Batches
    streams: torch.Tensor | None  # [B, N/B] on the device (streams mode)
    meta: dict[str, Any]  # what every checkpoint's config.json records
    log: Log
    step: int = 0
    best: float = math.inf
    # the best checkpoint's (NLL in nats, tokens) on the periodic slice, when this session
    # scored it: the final evaluation then scores only the validation text beyond the slice
    best_nll: tuple[float, int] | None = None
    best_step: int = -1
    carry: State = None  # the hidden state carried into the next window
    last_eval_step: int = -1
    clock: Clock = field(default_factory=Clock)

    @property
    def val_chars_per_token(self) -> float:
        # bits per *character*: a token of a byte or NFD tokenizer is less than one character
        return self.corpus.val_chars / self.corpus.val_ids.numel()

    @property
    def train_chars_per_token(self) -> float:
        return self.corpus.train_chars / max(1, self.corpus.train_ids.numel())

    @property
    def val_tokens(self) -> int:
        return self.corpus.val_ids.numel()

    @property
    def periodic_tokens(self) -> int:
        """Validation tokens a periodic evaluation scores (eval_tokens, at most all)."""
        limit = self.config.eval_tokens
        return self.val_tokens if limit is None else min(limit, self.val_tokens)
