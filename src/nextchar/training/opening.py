"""Opening a run: read the data, build (or restore) the model, wrap it for the devices, and
hand the loop a `Run`."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nextchar.core import __version__
from nextchar.core.config import ModelConfig, TrainConfig
from nextchar.core.errors import NextcharError
from nextchar.core.optim import AdamW
from nextchar.core.options import flag
from nextchar.core.runtime import check_memory, pick_device, seed_everything
from nextchar.models import build_model, count_parameters, load_pretrained, require
from nextchar.models.build import training_bytes
from nextchar.models.contract import EMBEDDING_INIT
from nextchar.text.data import Batches, Corpus, load_corpus, text_bytes
from nextchar.text.tokenizers import tokenizer_from_dict
from nextchar.training import distributed as dist
from nextchar.training.resume import check_budget_left, read_resume_state, recover_run, restore
from nextchar.training.rundir import make_run_dir
from nextchar.training.sizing import size_to_budget
from nextchar.training.state import Log, Run


def _optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    # Decay matrices only: biases and gains have no scale to regularise. Frozen parameters
    # (freeze_embeddings) are left out, so neither a step nor weight decay moves them.
    trained = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trained if p.dim() >= 2]
    other = [p for p in trained if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": other, "weight_decay": 0.0},
    ]
    if config.optimizer == "adam":
        for g in groups:
            g["weight_decay"] = 0.0
    return AdamW(groups, lr=config.lr)


def _check_model_options(model: Any, config: TrainConfig) -> None:
    if model.context_size is not None and config.seq_len > model.context_size:
        raise NextcharError(
            f"{flag('seq_len', config.seq_len)} is longer than the model's context "
            f"({model.context_size}); use {flag('seq_len', model.context_size)} or less"
        )
    if config.embeddings is not None:
        require(model, EMBEDDING_INIT, f"{flag('embeddings')}")
        if config.freeze_embeddings and model.config.tie_weights:
            raise NextcharError(
                f"{flag('freeze_embeddings')} with {flag('tie_weights')} would freeze the "
                "output layer too "
                "(they share one matrix); drop one of them"
            )


@dataclass
class _Data:
    corpus: Corpus
    model_config: ModelConfig
    pretrained: Any = None  # fine-tuning: the loaded GPT-2 whose weights start the run
    resume_state: dict[str, Any] | None = None
    trainer_state: dict[str, Any] | None = None
    saved: dict[str, Any] | None = None  # the resumed checkpoint's config.json


LARGE_TEXT = 50 * 10**6  # bytes of text past which reading and encoding take seconds


def _say_if_large(config: TrainConfig, log: Log) -> None:
    """A large text takes seconds to read and encode before the first step: say so, rather
    than sit silent."""
    size = text_bytes([*config.files, *([config.val_file] if config.val_file else [])])
    if size > LARGE_TEXT:
        log(f"reading and encoding {size / 1e6:,.0f} MB of text…")


def _read_data(
    model_config: ModelConfig,
    config: TrainConfig,
    run_dir: Path,
    resume: bool,
    corpus: Corpus | None,
    log: Log,
) -> _Data:
    """The text, encoded, and what a resumed or fine-tuned run starts from."""
    if corpus is None:
        _say_if_large(config, log)
    if resume:
        resume_state, trainer_state, saved = read_resume_state(run_dir)
        check_budget_left(run_dir, config, trainer_state)
        corpus = corpus or load_corpus(config, tokenizer_from_dict(saved["tokenizer"]))
        if trainer_state["fingerprint"] != corpus.fingerprint:
            raise NextcharError(
                f"the training or validation text differs from what {run_dir} "
                "was trained on; resume with the same files, or start a new run"
            )
        config_ = dataclasses.replace(model_config, vocab_size=corpus.tokenizer.vocab_size)
        return _Data(corpus, config_, None, resume_state, trainer_state, saved)
    if model_config.pretrained is not None:  # fine-tuning: its tokenizer and sizes
        pretrained, tokenizer = load_pretrained(model_config.pretrained, torch.device("cpu"))
        log(
            f"fine-tuning {model_config.pretrained}: {pretrained.describe()}, its BPE "
            f"tokenizer ({tokenizer.vocab_size:,} tokens)"
        )
        corpus = corpus or load_corpus(config, tokenizer)
        config_ = dataclasses.replace(pretrained.config, dropout=model_config.dropout)
        return _Data(corpus, config_, pretrained)
    corpus = corpus or load_corpus(config)
    return _Data(corpus, dataclasses.replace(model_config, vocab_size=corpus.tokenizer.vocab_size))


def _build(data: _Data, config: TrainConfig, log: Log) -> tuple[Any, dict[str, Any] | None]:
    """The model with its starting weights (random, pretrained, or initialised embeddings)."""
    check_memory(
        f"training a {data.model_config.describe()} model on batches of "
        f"{config.batch_size} x {config.seq_len}",
        training_bytes(data.model_config, config.batch_size, config.seq_len),
        ("hidden_size", "num_layers", "embedding_dim", "batch_size", "seq_len"),
    )
    seed_everything(config.seed)
    model = build_model(data.model_config)
    _check_model_options(model, config)
    if data.pretrained is not None:
        model.load_state_dict(data.pretrained.state_dict())
    embedding_info = None
    if config.embeddings is not None and data.resume_state is None:  # resuming: trained rows
        from nextchar.text.embeddings import vectors_from_config

        report = vectors_from_config(model.embedding, data.corpus, config)
        log(report.line())
        embedding_info = report.to_dict()
    if config.freeze_embeddings and model.embedding is not None:
        model.embedding.weight.requires_grad_(False)
    return model, embedding_info


def _wrap_for_devices(
    model: Any, group: dist.Group, device: torch.device, config: TrainConfig
) -> torch.nn.Module:
    """What the steps run: the model, in DDP across processes, compiled if asked."""
    trained = model
    if group.enabled:
        from torch.nn.parallel import DistributedDataParallel

        # DDP copies rank 0's weights to every process here, and from now on averages the
        # gradients across processes during backward().
        trained = DistributedDataParallel(
            model, device_ids=[device] if device.type == "cuda" else None
        )
        if group.rank > 0:  # dropout masks of their own; rank 0 draws what one process would
            torch.manual_seed(config.seed + group.rank)
    if config.compile:
        # compiled forward and backward for the steps; evaluation and checkpoints use the
        # plain module, whose parameters are the same tensors
        trained = torch.compile(trained)
    return trained


def open_run(
    model_config: ModelConfig,
    config: TrainConfig,
    run_dir: Path,
    resume: bool,
    corpus: Corpus | None,
    log: Log,
    started: float,
) -> Run:
    """Read the data, build (or restore) the model, place it on the devices. A fresh run with a
    time budget first sizes itself to the machine (sizing.py)."""
    group = dist.from_env()
    dist.check_batch(group, config.batch_size)
    device = dist.device_for(group, pick_device(config.device))
    if resume and group.is_main:  # before the others can read it (they wait in dist.start)
        recover_run(run_dir)
    dist.start(group, device)
    data = _read_data(model_config, config, run_dir, resume, corpus, log)
    # a fresh time-budgeted run sizes itself; several processes would each measure, and
    # could disagree, so they keep the shape and warm-up they were given
    timed = config.max_time is not None and config.max_steps is None
    if timed and not resume and not group.enabled:
        left = config.max_time - (time.perf_counter() - started)
        data.model_config, config = size_to_budget(
            data.model_config, config, data.corpus.train_ids, device, left, log,
            choose=config.size_to_machine,
        )  # fmt: skip
    rows = group.rows(config.batch_size)  # the text must fill a batch: said before the model
    batches = Batches(
        data.corpus.train_ids, config.batch_size, config.seq_len, config.batching, config.seed, rows
    )
    model, embedding_info = _build(data, config, log)
    model = model.to(device)
    trained = _wrap_for_devices(model, group, device, config)
    streams = batches.streams.to(device) if config.batching == "streams" else None
    if group.is_main:
        make_run_dir(run_dir)
    meta: dict[str, Any] = {
        "train": config.to_dict(),
        "nextchar_version": __version__,
        "parameters": count_parameters(model),
    }
    saved_embeddings = (data.saved or {}).get("embeddings", embedding_info)
    if saved_embeddings is not None:
        meta["embeddings"] = saved_embeddings
    run = Run(
        config, run_dir, device, data.corpus, model, trained, group,
        _optimizer(model, config), batches, streams, meta, log,
    )  # fmt: skip
    if data.trainer_state is not None and data.resume_state is not None:
        restore(run, data.resume_state, data.trainer_state, rows)
    return run
