"""The one training loop, for every model kind: batches in, optimizer steps out, and events to
listeners (run.py) that show progress, write metrics.jsonl, save checkpoints and plot curves.

A run directory holds `last/` (resumable: optimizer, carried state, RNG), `best/` (lowest
validation bpc), `metrics.jsonl` and `curves.png`. Everything that decides the next step's
numbers -- weights, optimizer moments, the carried hidden state, the RNG, the step -- is saved,
so an interrupted and resumed run computes the same losses as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nextchar.core.config import ModelConfig, TrainConfig
from nextchar.core.errors import NextcharError
from nextchar.core.runtime import ThreadTuner, cpu_bf16_supported
from nextchar.display import htmlview
from nextchar.models import build_model, count_parameters
from nextchar.models.checkpoint import WEIGHTS, load_weights
from nextchar.text.data import Corpus
from nextchar.training import distributed as dist
from nextchar.training.listeners import (
    Checkpoints,
    Listener,
    Metrics,
    ProgressBar,
    check_new_run_dir,
    remove_unsaved_run,
)
from nextchar.training.plan import RESUME_OVERRIDES, plan_run, resume_config
from nextchar.training.session import Log, Run, open_run

__all__ = [
    "RESUME_OVERRIDES",
    "TrainResult",
    "autocast_for",
    "lr_at",
    "plan_run",
    "resume_config",
    "train",
]


def lr_at(step: int, config: TrainConfig, progress: float) -> float:
    """Learning rate for `step`: linear warm-up, then the schedule. `progress` in [0, 1] is
    how far through the budget the run is (steps, or time when only --max-time is given)."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    floor = config.lr * config.min_lr_ratio
    if config.schedule == "constant":
        return config.lr
    if config.schedule == "step":
        return max(floor, config.lr * config.step_gamma ** (step // config.step_every))
    # cosine from lr down to floor over what is left after the warm-up
    if config.max_steps is not None:
        span = max(1, config.max_steps - config.warmup_steps)
        progress = (step - config.warmup_steps) / span
    progress = min(max(progress, 0.0), 1.0)
    return floor + 0.5 * (config.lr - floor) * (1.0 + math.cos(math.pi * progress))


@contextlib.contextmanager
def _interrupt_flag() -> Iterator[dict[str, bool]]:
    """First Ctrl-C asks the loop to stop at the next step boundary (so the checkpoint is
    consistent); a second one interrupts at once."""
    flag = {"stop": False}
    try:
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum: int, frame: Any) -> None:
            if flag["stop"]:
                raise KeyboardInterrupt
            flag["stop"] = True

        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: leave Ctrl-C alone
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def autocast_for(
    precision: str, device: torch.device, preferred: str = "fp32"
) -> contextlib.AbstractContextManager:
    """The mixed-precision context of a training step. `auto` is the model's
    `preferred_precision(device)`: what measured fastest at the same validation bpc (README,
    "Precision")."""
    if precision == "auto":
        precision = preferred
    if precision == "fp32":
        return contextlib.nullcontext()
    if device.type == "cuda":
        if not torch.cuda.is_bf16_supported():
            raise NextcharError(
                f"--precision bf16 needs a GPU with bf16 support ({torch.cuda.get_device_name()} "
                "has none): use --precision fp32 or auto"
            )
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if device.type == "cpu":
        if not cpu_bf16_supported():
            raise NextcharError(
                "--precision bf16 on the CPU needs oneDNN's bf16 kernels (a CPU with AVX-512 "
                "or AMX); this one has neither: use --precision fp32 (or auto)"
            )
        return torch.autocast("cpu", dtype=torch.bfloat16)
    raise NextcharError(f"--precision bf16 runs on CUDA or the CPU, not {device.type}")


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
            f"{status}: {self.step} steps in {self.seconds:.0f} s, "
            f"{self.chars_per_second:,.0f} characters/s, {self.parameters:,} parameters"
        ]
        if self.interrupted:
            return [
                *lines,
                f"saved {self.run_dir / 'last'}; continue with: nextchar train --resume "
                f"{self.run_dir}",
            ]
        scored = (
            "whole validation text"
            if self.final_val_tokens >= self.val_tokens
            else f"first {self.final_val_tokens:,} of {self.val_tokens:,} validation tokens: "
            "the time budget left no room for all; "
            f"nextchar eval {self.run_dir} {self.val_source or 'FILE'} scores it all"
        )
        return [
            *lines,
            f"validation: best {self.final_val_bpc:.4f} bits per character, perplexity "
            f"{self.final_val_perplexity:.2f} per {self.unit} ({scored}, best checkpoint)",
            f"run directory: {self.run_dir}  (best/, last/, metrics.jsonl, curves.png)",
            f"next: nextchar sample {self.run_dir} --length 300",
        ]

    def __str__(self) -> str:
        return "\n".join(self.summary())

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        curves = self.run_dir / "curves.png"
        plot = htmlview.png(curves, "training curves") if curves.is_file() else ""
        return htmlview.pre(str(self)) + plot


def _evaluate(run: Run, listeners: list[Listener], elapsed: float, progress: bool) -> None:
    """Validate (the main process) and tell the listeners; all processes take part."""
    started = time.perf_counter()
    val_bpc = run.validate(run.model, progress=progress) if run.group.is_main else None
    run.last_eval_step = run.step
    for listener in listeners:
        listener.evaluated(run, val_bpc, elapsed)
    run.eval_seconds = time.perf_counter() - started
    run.window = (time.perf_counter(), 0)  # evaluation is not training speed


# What the end of a run costs beyond its last evaluation: curves.png (matplotlib's import and
# one figure: 0.6-1.2 s measured) and writing metrics; and a save when none was timed yet.
END_SECONDS = 1.5
SAVE_SECONDS = 1.0
# A time budget spends at most this share on the final evaluation of the whole validation
# text; past it, the final evaluation scores the text's beginning and says how much.
FINAL_EVAL_SHARE = 0.25
PROBE_TOKENS = 8192


def final_eval_tokens(run: Run) -> int:
    """Validation tokens the final evaluation will score: none when every periodic evaluation
    scored the whole text already (the best checkpoint's number is then known), all of them
    when they fit the budget's share, else as many as fit."""
    if run.periodic_tokens >= run.val_tokens:
        return 0
    if run.config.max_time is None or not run.eval_rate:
        return run.val_tokens
    fits = int(run.eval_rate * FINAL_EVAL_SHARE * run.config.max_time)
    return max(min(run.val_tokens, fits), min(run.val_tokens, PROBE_TOKENS))


def end_reserve(run: Run) -> float:
    """Seconds a time-budgeted run keeps for its end: the step in flight, the evaluation and
    saves at the stop, the final evaluation and the plot. Rank 0's estimate decides (the
    others' clocks are not used)."""
    if not run.group.is_main:
        return 0.0
    rate = max(run.eval_rate, 1.0)
    stop_eval = run.eval_seconds or run.periodic_tokens / rate + SAVE_SECONDS
    return run.last_step_seconds + stop_eval + final_eval_tokens(run) / rate + END_SECONDS


def _loop(
    run: Run, listeners: list[Listener], progress: bool, should_stop: Callable[[int], bool] | None
) -> bool:
    """Step until the budget is spent or a stop is asked for; True if interrupted. A time
    budget counts the whole command: what the run took to open, and what its end will take."""
    config, group = run.config, run.group
    preferred = run.model.preferred_precision(run.device)
    autocast = autocast_for(config.precision, run.device, preferred)
    total, asked = config.max_steps, False
    tuner = ThreadTuner(config.threads, enabled=run.device.type == "cpu")
    if config.max_time is not None and group.is_main:
        run.measure_eval_rate(PROBE_TOKENS)  # on the tuner's first count: one thread
    run.window = (time.perf_counter(), 0)
    with _interrupt_flag() as flag, contextlib.closing(tuner):
        while total is None or run.step < total:
            # Every process must stop at the same step and follow the same clock (the
            # learning rate may follow it): rank 0's time, and stop if any process asks.
            reserve = end_reserve(run) if config.max_time is not None else 0.0
            spent, stop = dist.agree(group, run.elapsed() + reserve, asked, run.device)
            if stop:
                if run.last_eval_step != run.step:
                    _evaluate(run, listeners, run.elapsed(), False)
                return True
            # at least one step: a budget smaller than the run's own end still trains
            if config.max_time is not None and spent >= config.max_time and run.session_tokens:
                break
            lr = lr_at(run.step, config, spent / config.max_time if config.max_time else 0.0)
            loss = run.train_step(lr, autocast)
            tuner.record(run.last_step_seconds)
            for listener in listeners:
                listener.stepped(run)
            if run.step % config.log_every == 0 or run.step == total:
                row = run.metrics_row(loss, lr)
                for listener in listeners:
                    listener.logged(run, row)
            asked = flag["stop"] or (should_stop is not None and should_stop(run.step))
            if run.step % config.eval_every == 0 or run.step == total:
                _evaluate(run, listeners, run.elapsed(), progress)
    if run.last_eval_step != run.step:
        # stopped by the time budget between evaluations: record and save where we are
        _evaluate(run, listeners, run.elapsed(), progress)
    return False


def train(
    model_config: ModelConfig,
    config: TrainConfig,
    run_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    should_stop: Callable[[int], bool] | None = None,
    corpus: Corpus | None = None,
    log: Log | None = None,
    started: float | None = None,
) -> TrainResult:
    """Train (or, with resume=True, continue the run in `run_dir`) and return the summary.

    `should_stop(step)` is checked after every step, like Ctrl-C: the run stops there and
    saves a resumable checkpoint. `log` receives one-line reports made before training
    starts (such as how the embedding was initialised). A --max-time budget counts from
    `started` (a time.perf_counter() value: when the command began), else from this call.
    """
    run_dir = Path(run_dir)
    if not resume:
        check_new_run_dir(run_dir)
    existed = run_dir.exists()
    started = time.perf_counter() if started is None else started
    try:
        run = open_run(model_config, config, run_dir, resume, corpus, log or (lambda _: None))
        run.started = started
        return _finish(run, progress, should_stop)
    except BaseException:
        if not resume and dist.from_env().is_main:
            remove_unsaved_run(run_dir, existed)
        raise
    finally:  # also when opening the run failed after joining the process group
        dist.stop(dist.from_env())


def _finish(run: Run, progress: bool, should_stop: Callable[[int], bool] | None) -> TrainResult:
    """Run the loop with its listeners, then score the best checkpoint on the validation text
    (unless the periodic evaluations scored all of it already)."""
    main = run.group.is_main
    listeners: list[Listener] = [ProgressBar(run, progress and main)]
    if main:
        listeners.append(Metrics(run.run_dir / "metrics.jsonl", run.step))
    listeners.append(Checkpoints())
    interrupted = _loop(run, listeners, progress, should_stop)
    for listener in listeners:
        listener.ended(run)
    final, scored = run.best, run.periodic_tokens
    if main and not interrupted and final_eval_tokens(run):
        # the number users quote: the best checkpoint on all of the validation text (or as
        # much of it as the time budget leaves room for)
        scored = final_eval_tokens(run)
        best_model = build_model(run.model.config).to(run.device)
        load_weights(best_model, run.run_dir / "best" / WEIGHTS)
        final = run.validate(best_model, full=True, progress=progress, limit=scored)
    seconds = dist.agree(run.group, run.elapsed(), False, run.device)[0]
    cps = run.session_tokens * run.train_chars_per_token
    return TrainResult(
        run.run_dir,
        run.step,
        run.best,
        final,
        seconds,
        cps / run.step_seconds if run.step_seconds else 0.0,
        interrupted,
        count_parameters(run.model),
        run.corpus.tokenizer.unit,
        run.val_chars_per_token,
        scored,
        run.val_tokens,
        run.config.val_file,
    )
