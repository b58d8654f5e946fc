"""What a run will be, decided before it starts: the presets a command line starts from, the
time-only budget rule, and what may change when a run is resumed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nextchar.core.config import DEFAULT_TIME, ModelConfig, TrainConfig, model_config
from nextchar.core.errors import NextcharError
from nextchar.core.options import flag
from nextchar.text.corpora import default_validation
from nextchar.training.resume import RESUME_OVERRIDES, resume_config
from nextchar.training.rundir import default_run_dir
from nextchar.training.sizing import sizes_itself


@dataclass(frozen=True)
class Plan:
    model: ModelConfig
    train: TrainConfig
    run_dir: Path
    resume: bool


def plan_run(
    files: list[str] | tuple[str, ...],
    model_flags: dict[str, Any],
    train_flags: dict[str, Any],
    level: str | None = None,
    resume: str | Path | None = None,
    out: str | Path | None = None,
) -> Plan:
    """The configs of `nextchar train` from the flags given explicitly (absent ones are not in
    the dicts): GPT-2 and word level start from their own presets, a `max_time` without
    `max_steps` is a time budget (no step cap; the schedule follows the clock; with no shape
    flag the run sizes its model to the machine at the start), no budget at all is
    DEFAULT_TIME, a built-in
    corpus validates on its own validation text unless told otherwise, and a
    resumed run keeps its own settings but for RESUME_OVERRIDES."""
    model_kw, train_kw = dict(model_flags), dict(train_flags)
    if level is not None:
        tokenizer = train_kw.get("tokenizer")
        if tokenizer is not None and (tokenizer == "word") != (level == "word"):
            raise NextcharError(
                f"{flag('level', level)} contradicts {flag('tokenizer', tokenizer)}; give "
                "one of them"
            )
        if level == "word":
            train_kw["tokenizer"] = "word"
    if resume:
        if files or model_kw or set(train_kw) - set(RESUME_OVERRIDES):
            flags = ", ".join("--" + name.replace("_", "-") for name in RESUME_OVERRIDES)
            raise NextcharError(
                f"{flag('resume')} continues a run with its own files and settings; only {flags} "
                "may be given with it"
            )
        model, config = resume_config(resume, **train_kw)
        return Plan(model, config, Path(resume), True)
    if not files:
        raise NextcharError("give the training text: nextchar train FILE [FILE...]")
    preset = PRESETS.get(model_kw.get("kind", ""), PRESETS.get(train_kw.get("tokenizer", "")))
    if preset is not None:  # flags given explicitly win over the preset
        model_kw = {**preset["model"], **model_kw}
        train_kw = {**preset["train"], **train_kw}
    default_budget = preset is None and not {"max_steps", "max_time"} & set(train_kw)
    if default_budget:
        train_kw["max_time"] = DEFAULT_TIME
    train_kw["size_to_machine"] = sizes_itself(model_kw, train_kw)
    if ("max_time" in train_flags or default_budget) and "max_steps" not in train_flags:
        train_kw["max_steps"] = None
    if "val_file" not in train_kw and "val_fraction" not in train_kw:
        train_kw["val_file"] = default_validation(files)
    config = TrainConfig(files=tuple(files), **train_kw)
    run_dir = Path(out) if out else default_run_dir(files)
    return Plan(model_config(**model_kw), config, run_dir, False)


# Word level on a laptop CPU: the output layer has one row per word (about 17,000 for the
# Shakespeare corpus), so the model is narrower and the windows shorter than the character
# default; dropout because a word corpus of a million tokens overfits within a few epochs.
# Word level (`level="word"`) starts from these; options given explicitly win.
# Measured in bench/RESULTS.md ("Word level").
WORD_LEVEL: dict[str, dict[str, Any]] = {
    "model": {
        "cell": "lstm",
        "hidden_size": 256,
        "num_layers": 1,
        "embedding_dim": 128,
        "dropout": 0.3,
    },
    "train": {
        "tokenizer": "word",
        "batch_size": 32,
        "seq_len": 32,
        "lr": 3e-3,
        "max_steps": 1000,
        "eval_every": 200,
    },
}


# GPT-2 from scratch on a laptop CPU: a small model, windows of the whole context, and the
# learning rate and warm-up transformers are usually trained with. No dropout: on short
# budgets the model underfits, and dropout (attention dropout above all) made a CPU step
# much slower on a CPU (bench/RESULTS.md). GPT-2 (`model="gpt2"`) starts from these; options
# given explicitly win.
GPT2_LEVEL: dict[str, dict[str, Any]] = {
    "model": {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 128, "dropout": 0.0},
    "train": {"batch_size": 32, "seq_len": 128, "lr": 1e-3, "warmup_steps": 100},
}

# GPT-2 (model="gpt2") and word level (tokenizer="word", level="word") start from their own
# defaults
PRESETS: dict[str, dict[str, dict[str, Any]]] = {"gpt2": GPT2_LEVEL, "word": WORD_LEVEL}
