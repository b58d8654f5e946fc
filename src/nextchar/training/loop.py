"""The one training loop, for every model kind, read top to bottom: open the run, step
(forward, backward, optimizer), evaluate every so often -- the loop keeps the best score --,
tell the listeners (listeners.py), and score the best checkpoint at the end. A time budget
counts the whole command and keeps a measured reserve for the run's end (budget.py)."""

from __future__ import annotations

import contextlib
import math
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from nextchar.core.config import ModelConfig, TrainConfig
from nextchar.core.errors import NextcharError
from nextchar.core.options import flag
from nextchar.core.runtime import KEEP_THREADS, ThreadTuner, autocast_for
from nextchar.inference.evaluate import bits, evaluate_ids
from nextchar.models import build_model, count_parameters, detach_state
from nextchar.models.checkpoint import WEIGHTS, load_weights
from nextchar.text.data import Corpus
from nextchar.training import distributed as dist
from nextchar.training.budget import PROBE_TOKENS, end_reserve, final_eval_tokens
from nextchar.training.listeners import Checkpoints, Listener, Metrics, ProgressBar
from nextchar.training.opening import open_run
from nextchar.training.result import TrainResult
from nextchar.training.rundir import check_new_run_dir, one_writer, remove_unsaved_run
from nextchar.training.sizing import warmup_for
from nextchar.training.state import Log, Run


def lr_at(step: int, config: TrainConfig, progress: float) -> float:
    """Learning rate for `step`: linear warm-up, then the schedule. `progress` in [0, 1] is
    how far through the budget the run is (steps, or time when only a time budget is given,
    whose warm-up was sized to its steps at the start: sizing.py)."""
    warmup = config.warmup_steps
    if config.max_steps is not None:
        warmup = warmup_for(config, config.max_steps)
    if step < warmup:
        return config.lr * (step + 1) / warmup
    floor = config.lr * config.min_lr_ratio
    if config.schedule == "constant":
        return config.lr
    if config.schedule == "step":
        return max(floor, config.lr * config.step_gamma ** (step // config.step_every))
    # cosine from lr down to floor over what is left after the warm-up
    if config.max_steps is not None:
        span = max(1, config.max_steps - warmup)
        progress = (step - warmup) / span
    progress = min(max(progress, 0.0), 1.0)
    return floor + 0.5 * (config.lr - floor) * (1.0 + math.cos(math.pi * progress))


def train_step(run: Run, lr: float, autocast: contextlib.AbstractContextManager) -> torch.Tensor:
    """One optimizer step; the loss of this process's batch, checked to be finite."""
    started = time.perf_counter()
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    if run.streams is None or run.batches.starts_epoch(run.step):
        run.carry = None  # random windows, or a new pass over the streams
    x, y = run.batches.get(run.step, run.streams)
    if run.streams is None and run.device.type == "cuda":
        # random windows are cut on the host: page-locked memory lets the copy overlap
        x, y = x.pin_memory(), y.pin_memory()
    x, y = x.to(run.device, non_blocking=True), y.to(run.device, non_blocking=True)
    with autocast:
        logits, new_carry = run.trained(x, run.carry)  # [B, T, V]
    loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if run.config.grad_clip:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.config.grad_clip)
    run.optimizer.step()
    run.carry = detach_state(new_carry)
    run.step += 1
    value = loss.item()  # this process's loss; waits for the step to finish
    clock = run.clock
    clock.last_step_seconds = time.perf_counter() - started
    clock.step_seconds += clock.last_step_seconds
    if not math.isfinite(value):
        raise diverged(run, f"the training loss is {value}")
    tokens = run.config.batch_size * run.config.seq_len  # the global batch
    clock.tokens += tokens
    clock.window = (clock.window[0], clock.window[1] + tokens)
    return loss


def diverged(run: Run, what: str) -> NextcharError:
    """The one-line error for a run whose numbers left the finite range. Nothing is saved
    from here on, so last/ and best/ keep the last good state."""
    lr = run.optimizer.param_groups[0]["lr"]
    # a tenth of the peak, and never more than 1e-2 (every default is below it)
    advice = f"train again with a lower {flag('lr')}, such as {min(run.config.lr / 10, 1e-2):.2g}"
    if not run.config.grad_clip:
        advice += f" and {flag('grad_clip', 1)}"
    kept = (
        f"{run.run_dir / 'last'} (step {run.last_eval_step}) is kept"
        if run.last_eval_step > 0
        else "nothing was saved"
    )
    return NextcharError(
        f"training diverged at step {run.step}: {what} (learning rate {lr:.3g} at this step, "
        f"{flag('lr', f'{run.config.lr:g}')}); {advice}; {kept}"
    )


def validate(
    run: Run, model: Any, ids: torch.Tensor, progress: bool = False, desc: str = "eval"
) -> tuple[float, int]:
    """(NLL in nats, predicted tokens) of validation ids; measures the evaluation speed too."""
    started = time.perf_counter()
    try:
        nll, tokens, _ = evaluate_ids(model, ids, seq_len=256, progress=progress, desc=desc)
    except NextcharError:  # a non-finite NLL: the weights went bad during the last steps
        raise diverged(run, "the validation loss is not finite") from None
    run.clock.eval_rate = tokens / max(time.perf_counter() - started, 1e-9)
    return nll, tokens


def to_bpc(run: Run, nll: float, tokens: int) -> float:
    return bits(nll / (tokens * run.val_chars_per_token))


def metrics_row(run: Run, loss: torch.Tensor, lr: float) -> dict[str, Any]:
    """The metrics line of this step: every process takes part (the loss is averaged)."""
    now, clock = time.perf_counter(), run.clock
    cps = clock.window[1] * run.train_chars_per_token / max(now - clock.window[0], 1e-9)
    clock.window = (now, 0)
    return {
        "step": run.step,
        "loss": dist.mean(run.group, loss).item(),  # the loss of the global batch
        "lr": lr,
        "chars_per_sec": round(cps),
        "threads": torch.get_num_threads(),  # what the thread tuner runs on now
        "elapsed": round(clock.elapsed(), 3),
    }


def evaluate(run: Run, listeners: list[Listener], progress: bool) -> None:
    """Validate (the main process), keep the best score, and tell the listeners (which save
    best/ and last/); all processes take part."""
    started = time.perf_counter()
    elapsed = run.clock.elapsed()
    val_bpc, improved = None, False
    if run.group.is_main:
        nll, tokens = validate(run, run.model, run.corpus.val_ids[: run.periodic_tokens], progress)
        val_bpc = to_bpc(run, nll, tokens)
        improved = val_bpc < run.best
    if improved:
        run.best, run.best_nll, run.best_step = val_bpc, (nll, tokens), run.step
    run.last_eval_step = run.step
    for listener in listeners:
        listener.evaluated(run, val_bpc, improved, elapsed)
    run.clock.eval_seconds = time.perf_counter() - started
    run.clock.window = (time.perf_counter(), 0)  # evaluation is not training speed


# What stops a run like Ctrl-C: schedulers and `docker stop` send SIGTERM, a closed terminal
# SIGHUP. The first asks the loop to stop at the next step boundary (so the checkpoint is
# consistent) and save; a second interrupts at once.
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


@contextlib.contextmanager
def _interrupt_flag() -> Iterator[dict[str, bool]]:
    """A flag the stop signals set (see STOP_SIGNALS); their old handlers come back after."""
    flag_ = {"stop": False}

    def handler(signum: int, frame: Any) -> None:
        if flag_["stop"]:
            raise KeyboardInterrupt
        flag_["stop"] = True

    try:
        previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    except ValueError:  # not the main thread: leave the signals alone
        yield flag_
        return
    try:
        yield flag_
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _loop(
    run: Run, listeners: list[Listener], progress: bool, should_stop: Callable[[int], bool] | None
) -> bool:
    """Step until the budget is spent or a stop is asked for; True if interrupted."""
    config, group, clock = run.config, run.group, run.clock
    autocast = autocast_for(config.precision, run.device, run.model.preferred_precision(run.device))
    total, asked = config.max_steps, False
    tuner = ThreadTuner(config.threads, enabled=run.device.type == "cpu")
    if config.max_time is not None and group.is_main:
        # the end's reserve is planned from this speed until a periodic evaluation measures it
        # again (on the tuner's first count: one thread)
        validate(run, run.model, run.corpus.val_ids[:PROBE_TOKENS])
    clock.window = (time.perf_counter(), 0)
    with _interrupt_flag() as interrupt, contextlib.closing(tuner):
        while total is None or run.step < total:
            # Every process must stop at the same step and follow the same clock (the
            # learning rate may follow it): rank 0's time, and stop if any process asks.
            reserve = end_reserve(run) if config.max_time is not None else 0.0
            spent, stop = dist.agree(group, clock.elapsed() + reserve, asked, run.device)
            if stop:
                if run.last_eval_step != run.step:
                    evaluate(run, listeners, False)
                return True
            # at least one step: a budget smaller than the run's own end still trains
            if config.max_time is not None and spent >= config.max_time and clock.tokens:
                break
            lr = lr_at(run.step, config, spent / config.max_time if config.max_time else 0.0)
            loss = train_step(run, lr, autocast)
            tuner.record(clock.last_step_seconds)
            for listener in listeners:
                listener.stepped(run)
            if run.step % config.log_every == 0 or run.step == total:
                row = metrics_row(run, loss, lr)
                for listener in listeners:
                    listener.logged(run, row)
            asked = interrupt["stop"] or (should_stop is not None and should_stop(run.step))
            if run.step % config.eval_every == 0 or run.step == total:
                evaluate(run, listeners, progress)
        if run.last_eval_step != run.step:
            # stopped by the time budget between evaluations: record and save where we are
            # (on the tuner's thread count: the full count on a busy machine is the cliff)
            evaluate(run, listeners, progress)
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
    starts (such as how the embedding was initialised). A time budget counts from `started`
    (a time.perf_counter() value: when the command began), else from this call.
    """
    run_dir, main = Path(run_dir), dist.from_env().is_main
    if not resume:  # before the lock: a refused directory gets no .lock of ours
        check_new_run_dir(run_dir)
    existed = run_dir.exists()
    started = time.perf_counter() if started is None else started
    finished = False
    # the main process writes the run; the lock keeps every other writer out until it ends
    with one_writer(run_dir) if main else contextlib.nullcontext():
        try:
            if not resume:
                check_new_run_dir(run_dir)  # again under it: two starts cannot both pass
            run = open_run(
                model_config, config, run_dir, resume, corpus, log or (lambda _: None), started
            )
            run.clock.started = started
            keeping = KEEP_THREADS.set(config.keep_threads)  # its evaluations' tuners too
            try:
                result = _finish(run, progress, should_stop)
            finally:
                KEEP_THREADS.reset(keeping)
            finished = True
            return result
        except BaseException:
            if not resume and main:
                remove_unsaved_run(run_dir, existed)
            raise
        finally:  # also when opening the run failed after joining the process group
            dist.stop(dist.from_env(), finished)


def final_evaluation(run: Run, tokens: int, progress: bool) -> float:
    """The number users quote: the best checkpoint on the first `tokens` validation tokens
    (all of them, or what the time budget leaves room for). Its score on the periodic slice
    is known when this session made it, so only the text beyond is scored: the run's end
    costs one evaluation, not two."""
    ids = run.corpus.val_ids
    if run.best_step == run.step:
        best = run.model  # the last evaluation was the best: these are best/'s weights
    else:
        best = build_model(run.model.config).to(run.device)
        load_weights(best, run.run_dir / "best" / WEIGHTS)
    known, start = (0.0, 0), 0
    if run.best_nll is not None:
        # the rest continues from the slice's last token, which it is given, not scored
        known, start = run.best_nll, run.periodic_tokens - 1
    if not progress:  # quiet: one line, so a long evaluation is not silence
        more = " more" if start else ""
        run.log(f"evaluating the best checkpoint on {tokens - start:,}{more} validation tokens…")
    nll, scored = validate(run, best, ids[start:tokens], progress, desc="final eval")
    return to_bpc(run, known[0] + nll, known[1] + scored)


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
    if main and not interrupted and final_eval_tokens(run) > scored:
        scored = final_eval_tokens(run)
        final = final_evaluation(run, scored, progress)
    seconds = dist.agree(run.group, run.clock.elapsed(), False, run.device)[0]
    cps = run.clock.tokens * run.train_chars_per_token
    return TrainResult(
        run.run_dir,
        run.step,
        run.best,
        final,
        seconds,
        cps / run.clock.step_seconds if run.clock.step_seconds else 0.0,
        interrupted,
        count_parameters(run.model),
        run.corpus.tokenizer.unit,
        run.val_chars_per_token,
        scored,
        run.val_tokens,
        run.config.val_file,
    )
