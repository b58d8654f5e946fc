"""`nextchar train`: flags from the model configs and TrainConfig; what they mean together (presets,
time budgets, resuming) is decided by the library's `plan_run`, not here."""

from __future__ import annotations

import argparse

from nextchar.cli.common import Sub, add_fields, given
from nextchar.core.config import DEFAULT_TIME, GPT2Config, RecurrentConfig, RunConfig, TrainConfig
from nextchar.core.options import flag_name


def add_train(sub: Sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a character, word or BPE language model (RNN/LSTM/GRU or GPT-2) on text",
        description="Train an RNN/LSTM/GRU (or, with --model gpt2, a GPT-2) language model on "
        "text, one character, word or BPE token at a time; reports validation bits per "
        "character and writes checkpoints to a run directory.",
    )
    p.add_argument("files", nargs="*", help="training text: files or directories")
    add_fields(p, RunConfig)
    add_fields(p, RecurrentConfig)
    add_fields(p, GPT2Config)
    # what `nextchar train` gives a run with no budget (plan_run): 8 minutes, no step cap
    add_fields(p, TrainConfig, defaults={"max_steps": None, "max_time": f"{DEFAULT_TIME / 60:g}m"})
    p.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> int:
    from nextchar.training import distributed
    from nextchar.training.loop import train
    from nextchar.training.plan import plan_run

    run = RunConfig(**given(args, RunConfig))
    model_flags = {**given(args, RecurrentConfig), **given(args, GPT2Config)}
    train_flags = given(args, TrainConfig)
    plan = plan_run(args.files, model_flags, train_flags, run.level, run.resume, run.out)
    group = distributed.from_env()
    if run.processes > 1 and not group.launched:
        # checked here, once, before any process starts; each process then runs this command
        # (into the run directory chosen here)
        distributed.check_batch(distributed.Group(world_size=run.processes), plan.train.batch_size)
        pinned = [] if plan.resume or run.out else [flag_name("out"), str(plan.run_dir)]
        return distributed.launch(run.processes, [*args.argv, *pinned])
    main_process = group.is_main  # under torchrun, rank 0 alone reports
    chosen = plan.train.val_file is not None and "val_file" not in train_flags
    if main_process and not plan.resume and chosen:
        print(f"validation text: {plan.train.val_file} (the built-in corpus's own)")
    result = train(
        plan.model,
        plan.train,
        plan.run_dir,
        resume=plan.resume,
        progress=not run.quiet and main_process,
        log=lambda line: print(line, flush=True) if main_process else None,
        started=args.started,
    )
    if main_process:
        print(result)
    return 130 if result.interrupted else 0
