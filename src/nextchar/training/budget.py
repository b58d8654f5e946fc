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
    """Validation tokens the final number covers: all of them, or under a time budget as many
    as fit its share -- never fewer than a periodic evaluation or the start's probe scores."""
    if run.config.max_time is None or not run.clock.eval_rate:
        return run.val_tokens
    fits = int(run.clock.eval_rate * FINAL_EVAL_SHARE * run.config.max_time)
    return min(run.val_tokens, max(run.periodic_tokens, PROBE_TOKENS, fits))


def final_eval_cost(run: Run) -> int:
    """Tokens the final evaluation still has to score: those beyond the periodic slice when the
    best checkpoint's score on that slice is known (the common case), else all it covers."""
    covered = final_eval_tokens(run)
    if covered <= run.periodic_tokens:
        return 0
    return covered - run.periodic_tokens if run.best_nll is not None else covered


def end_reserve(run: Run) -> float:
    """Seconds a time-budgeted run keeps for its end. Rank 0's estimate decides (the others'
    clocks are not used)."""
    if not run.group.is_main:
        return 0.0
    clock = run.clock
    rate = max(clock.eval_rate, 1.0)
    stop_eval = clock.eval_seconds or run.periodic_tokens / rate + SAVE_SECONDS
    return clock.last_step_seconds + stop_eval + final_eval_cost(run) / rate + END_SECONDS
