"""Honest time budgets: a time-budgeted run keeps a reserve, measured in this run, for what its
end costs -- the step in flight, the evaluation and saves at the stop, the final evaluation,
the plot -- so the command returns within its budget."""

from __future__ import annotations

from nextchar.training.state import Run

# What the end of a run costs beyond its last evaluation: curves.png (matplotlib's import and
# one figure) and writing metrics; and a save when none was timed yet. bench/ measures them.
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
    if run.config.max_time is None or not run.clock.eval_rate:
        return run.val_tokens
    fits = int(run.clock.eval_rate * FINAL_EVAL_SHARE * run.config.max_time)
    return max(min(run.val_tokens, fits), min(run.val_tokens, PROBE_TOKENS))


def end_reserve(run: Run) -> float:
    """Seconds a time-budgeted run keeps for its end. Rank 0's estimate decides (the others'
    clocks are not used)."""
    if not run.group.is_main:
        return 0.0
    clock = run.clock
    rate = max(clock.eval_rate, 1.0)
    stop_eval = clock.eval_seconds or run.periodic_tokens / rate + SAVE_SECONDS
    return clock.last_step_seconds + stop_eval + final_eval_tokens(run) / rate + END_SECONDS
