"""The resume format, in one place: what a run's `last/` holds besides its weights, how it is
written and checked, what a resumed run may change, and how a run is put back where it was.

    last/optimizer.pt         optimizer state, carried hidden state ([layers, global batch,
                              units]: the layout of one process), every process's RNG state
                              (plain tensors, read with weights_only=True: never a pickle)
    last/trainer_state.json   step, best validation bpc, seconds used, the data's fingerprint

Everything that decides the next step's numbers is saved, so an interrupted and resumed run
computes the same losses as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import torch

from nextchar.core.config import ModelConfig, TrainConfig, model_config_from_dict
from nextchar.core.errors import NextcharError
from nextchar.core.options import flag
from nextchar.models import state_from_tensors, state_tensors
from nextchar.models.checkpoint import WEIGHTS, load_weights, read_meta, recover, save_checkpoint
from nextchar.training import distributed as dist
from nextchar.training.state import Run

OPTIMIZER, TRAINER_STATE = "optimizer.pt", "trainer_state.json"

# What may change when a run is resumed: its budget and bookkeeping, never what it learns from.
RESUME_OVERRIDES = (
    "max_steps",
    "max_time",
    "device",
    "eval_every",
    "log_every",
    "compile",
    "threads",
    "keep_threads",
)


def save_last(run: Run, info: dict[str, Any], elapsed: float) -> None:
    """Write `last/`: the weights and everything a resume needs. Every process takes part (the
    carried state and RNG of all are saved); the main one writes. Saved at a step boundary, so
    the RNG state is the one the next step starts from. The carried state is gathered where it
    lives (NCCL moves GPU tensors only), then kept on the CPU."""
    group, cuda = run.group, run.device.type == "cuda"
    carry = [dist.gather_rows(group, s, dim=1).cpu() for s in state_tensors(run.carry)]
    rng_cpu = dist.gather_bytes(group, torch.get_rng_state())
    rng_cuda = dist.gather_bytes(group, torch.cuda.get_rng_state(run.device)) if cuda else None
    if not group.is_main:
        return
    blob = {
        "optimizer": run.optimizer.state_dict(),
        "carry": carry,
        "rng_cpu": rng_cpu[0],
        "rng_cuda": rng_cuda[0] if rng_cuda else None,
        "rng_cpu_ranks": rng_cpu,
        "rng_cuda_ranks": rng_cuda,
    }
    state = {
        "step": run.step,
        "best_val_bpc": run.best,
        "elapsed": elapsed,
        "fingerprint": run.corpus.fingerprint,
    }

    def write(tmp: Path) -> None:
        torch.save(blob, tmp / OPTIMIZER)
        (tmp / TRAINER_STATE).write_text(json.dumps(state, indent=2) + "\n")

    save_checkpoint(run.run_dir / "last", run.model, run.corpus.tokenizer, info, write)


def recover_run(run_dir: Path) -> None:
    """Finish what a killed save left behind, before anything reads the run."""
    recover(run_dir / "last")
    recover(run_dir / "best")


def read_resume_state(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(optimizer.pt contents, trainer_state.json contents, config.json) of a run's last/."""
    ckpt, saved = read_meta(run_dir / "last")
    if not (ckpt / OPTIMIZER).exists() or not (ckpt / TRAINER_STATE).exists():
        raise NextcharError(
            f"{ckpt} has no {OPTIMIZER}/{TRAINER_STATE}: it cannot be resumed "
            "(only a run's last/ checkpoint can)"
        )
    damaged = f"{ckpt}: resume state is damaged"
    try:
        # weights_only=True: tensors and plain containers only, never arbitrary pickles.
        blob = torch.load(ckpt / OPTIMIZER, map_location="cpu", weights_only=True)
        trainer_state = json.loads((ckpt / TRAINER_STATE).read_text())
    except Exception as exc:  # any failure here means a damaged file, not a bug of ours
        raise NextcharError(
            f"{damaged} ({type(exc).__name__}); start a new run or resume from another copy"
        ) from None
    expected = {"step": int, "best_val_bpc": (int, float), "elapsed": (int, float),
                "fingerprint": str}  # fmt: skip
    for key, kind in expected.items():
        if not isinstance(trainer_state, dict) or not isinstance(trainer_state.get(key), kind):
            raise NextcharError(
                f"{damaged} ({TRAINER_STATE} has no valid {key!r}); start a new run or resume "
                "from another copy"
            )
    if not isinstance(blob, dict) or not {"optimizer", "carry"} <= set(blob):
        raise NextcharError(f"{damaged} ({OPTIMIZER} lacks the optimizer or carried state)")
    return blob, trainer_state, saved


def check_budget_left(run_dir: Path, config: TrainConfig, trainer_state: dict[str, Any]) -> None:
    """Resuming must train: a budget already spent would 'succeed' having done nothing."""
    step, spent = int(trainer_state["step"]), float(trainer_state["elapsed"])
    if config.max_steps is not None and step >= config.max_steps:
        raise NextcharError(
            f"{run_dir} is at step {step} already and {flag('max_steps')} is "
            f"{config.max_steps}: nothing is left to train; give a larger "
            f"{flag('max_steps')} (such as {step * 2})"
        )
    if config.max_time is not None and spent >= config.max_time:
        raise NextcharError(
            f"{run_dir} has used its {flag('max_time')} ({spent:.0f} s of "
            f"{config.max_time:.0f} s): nothing is left to train; give a larger "
            f"{flag('max_time')}, or {flag('max_steps')} alone"
        )


def resume_config(run_dir: str | Path, **overrides: Any) -> tuple[ModelConfig, TrainConfig]:
    """The model and training configs a run was started with, with budget overrides."""
    ckpt, meta = read_meta(Path(run_dir) / "last")
    if not isinstance(meta.get("train"), dict):
        raise NextcharError(f"{ckpt} records no training settings ('train'): it cannot be resumed")
    config = TrainConfig.from_dict(meta["train"])
    unknown = set(overrides) - set(RESUME_OVERRIDES)
    if unknown:
        raise NextcharError(
            f"cannot change {', '.join(flag(n) for n in sorted(unknown))} when resuming; only "
            f"{', '.join(flag(n) for n in RESUME_OVERRIDES)}"
        )
    given = {k: v for k, v in overrides.items() if v is not None}
    if "max_steps" in given and "max_time" not in given:
        # a new step budget replaces the old one whole: a run stopped by its time budget
        # would otherwise stop again at once, its time already spent
        given["max_time"] = None
    config = dataclasses.replace(config, **given)
    return model_config_from_dict(meta["model"]), config


def restore(run: Run, blob: dict[str, Any], trainer_state: dict[str, Any], rows: slice) -> None:
    """Weights, optimizer, carried state, RNG and position of the run's last/, each checked
    against the run and itself first: a damaged or edited last/ is one line, before any
    step, never a traceback or a run that trains on from nonsense."""
    last = run.run_dir / "last"

    def refuse(what: str) -> NoReturn:
        raise NextcharError(f"{last} does not fit this run: {what}; resume from another copy "
                            "or start a new run")  # fmt: skip

    _check_position(trainer_state, refuse)
    try:
        load_weights(run.model, last / WEIGHTS)
    except Exception as exc:  # a damaged file or another model: the user's data, not a bug
        refuse(f"the weights do not fit the model ({_first_line(exc)})")
    _check_carry(run, blob["carry"], refuse)
    _check_optimizer(run, blob["optimizer"], refuse)
    try:
        run.optimizer.load_state_dict(blob["optimizer"])
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        refuse(f"the optimizer state does not fit the model ({_first_line(exc)})")
    run.step = run.last_eval_step = int(trainer_state["step"])  # last/ holds this step
    run.carry = state_from_tensors([t[:, rows] for t in blob["carry"]], run.device)
    _restore_rng(run, blob, run.config.seed + run.step)
    run.best = float(trainer_state["best_val_bpc"])
    run.clock.elapsed_before = float(trainer_state["elapsed"])


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:160]


def _check_position(state: dict[str, Any], refuse: Callable[[str], NoReturn]) -> None:
    step, best, elapsed = state["step"], float(state["best_val_bpc"]), float(state["elapsed"])
    if step < 0:
        refuse(f"its step is {step}")
    if math.isnan(best) or best < 0:
        refuse(f"its best validation bpc is {best}")
    if not math.isfinite(elapsed) or elapsed < 0:
        refuse(f"its time used is {elapsed} s")


def _check_carry(run: Run, carry: Any, refuse: Callable[[str], NoReturn]) -> None:
    """The carried state: none, or one tensor per state name in the layout of one process
    with the whole batch ([layers, batch, units])."""
    if not isinstance(carry, list) or not all(isinstance(t, torch.Tensor) for t in carry):
        refuse("its carried state is not a list of tensors")
    if not carry:
        return
    expected = [tuple(s) for s in run.model.state_shapes(run.config.batch_size).values()]
    found = [tuple(t.shape) for t in carry]
    if found != expected:
        refuse(f"its carried state has shapes {found}, the model and batch need {expected}")


def _check_optimizer(run: Run, saved: Any, refuse: Callable[[str], NoReturn]) -> None:
    """Every moment tensor has its parameter's shape (torch checks only the group sizes)."""
    if not isinstance(saved, dict) or not isinstance(saved.get("state"), dict):
        refuse("its optimizer state is not an optimizer's")
    params = [p for group in run.optimizer.param_groups for p in group["params"]]
    for index, moments in saved["state"].items():
        if not isinstance(index, int) or not 0 <= index < len(params):
            refuse(f"its optimizer state names parameter {index!r} of {len(params)}")
        for name, value in (moments or {}).items():
            if name.startswith("exp_avg") and tuple(value.shape) != tuple(params[index].shape):
                refuse(
                    f"its optimizer's {name} of parameter {index} has shape "
                    f"{tuple(value.shape)}, the parameter {tuple(params[index].shape)}"
                )


def _restore_rng(run: Run, blob: dict[str, Any], fallback_seed: int) -> None:
    """Each process continues its own random stream; a run resumed with another number of
    processes cannot, so its dropout masks are drawn afresh (the weights are unaffected)."""
    group = run.group
    cpu = blob.get("rng_cpu_ranks") or [blob["rng_cpu"]]
    cuda = blob.get("rng_cuda_ranks") or [blob.get("rng_cuda")]
    if len(cpu) != group.world_size:
        if group.is_main:
            run.log(
                f"resuming on {group.world_size} process(es) a run saved from {len(cpu)}: "
                "random streams (dropout) start afresh"
            )
        torch.manual_seed(fallback_seed + group.rank)
        return
    try:
        torch.set_rng_state(cpu[group.rank])
        if run.device.type == "cuda" and cuda[group.rank] is not None:
            torch.cuda.set_rng_state(cuda[group.rank], run.device)
    except (RuntimeError, TypeError) as exc:
        raise NextcharError(
            f"{run.run_dir / 'last'} does not fit this run: its random state cannot be "
            f"restored ({_first_line(exc)}); resume from another copy or start a new run"
        ) from None
