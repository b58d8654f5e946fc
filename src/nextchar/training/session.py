"""A training session: what one run owns between steps (`Run`, whose methods are the pieces
of the loop), and how a run is opened -- read the data, build or restore the model, wrap it
for the devices."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from nextchar import __version__
from nextchar.core.config import ModelConfig, TrainConfig
from nextchar.core.errors import NextcharError
from nextchar.core.optim import AdamW
from nextchar.core.runtime import pick_device, seed_everything
from nextchar.inference.evaluate import bits, evaluate_ids
from nextchar.models import (
    State,
    build_model,
    count_parameters,
    detach_state,
    load_pretrained,
    require,
    state_from_tensors,
)
from nextchar.models.checkpoint import WEIGHTS, load_resume_state, load_weights, read_meta, recover
from nextchar.models.contract import EMBEDDING_INIT
from nextchar.text.data import Batches, Corpus, load_corpus
from nextchar.text.tokenizers import tokenizer_from_dict
from nextchar.training import distributed as dist
from nextchar.training.listeners import make_run_dir
from nextchar.training.plan import check_budget_left

Log = Callable[[str], None]


@dataclass
class Run:
    """What one run owns between steps; its methods are the pieces of the loop."""

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
    elapsed_before: float = 0.0  # seconds spent before a resume
    carry: State = None  # the hidden state carried into the next window
    last_eval_step: int = -1
    started: float = field(default_factory=time.perf_counter)
    step_seconds: float = 0.0  # time in optimizer steps this session: the training speed
    last_step_seconds: float = 0.0
    eval_rate: float = 0.0  # validation tokens per second, as last measured
    eval_seconds: float = 0.0  # the last periodic evaluation with its saves
    session_tokens: int = 0
    window: tuple[float, int] = (0.0, 0)  # (start, tokens) since the last metrics line

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.started

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
        """Validation tokens a periodic evaluation scores (--eval-tokens, at most all)."""
        limit = self.config.eval_tokens
        return self.val_tokens if limit is None else min(limit, self.val_tokens)

    def validate(
        self, model: Any, full: bool = False, progress: bool = False, limit: int | None = None
    ) -> float:
        """Validation bits per character: of the first --eval-tokens tokens, or with `full` of
        the whole text (or its first `limit` tokens). Measures the evaluation speed too."""
        ids = self.corpus.val_ids
        if not full:
            limit = self.periodic_tokens
        if limit is not None:
            ids = ids[:limit]
        if full and not progress:  # --quiet: one line, so a long evaluation is not silence
            self.log(f"evaluating the best checkpoint on {ids.numel():,} validation tokens…")
        desc = "final eval" if full else "eval"
        started = time.perf_counter()
        try:
            nll, tokens, _ = evaluate_ids(
                model, ids, batch_size=16, seq_len=256, progress=progress, desc=desc
            )
        except NextcharError:  # a non-finite NLL: the weights went bad during the last steps
            raise self.diverged("the validation loss is not finite", self.step) from None
        self.eval_rate = tokens / max(time.perf_counter() - started, 1e-9)
        return bits(nll / (tokens * self.val_chars_per_token))

    def measure_eval_rate(self, tokens: int) -> None:
        """Time an evaluation of the first `tokens` validation tokens (a time budget plans
        its end from this speed until a periodic evaluation measures it again)."""
        started = time.perf_counter()
        ids = self.corpus.val_ids[:tokens]
        evaluate_ids(self.model, ids, batch_size=16, seq_len=256)
        self.eval_rate = ids.numel() / max(time.perf_counter() - started, 1e-9)

    def diverged(self, what: str, step: int) -> NextcharError:
        """The one-line error for a run whose numbers left the finite range. Nothing is saved
        from here on, so last/ and best/ keep the last good state."""
        lr = self.optimizer.param_groups[0]["lr"]
        # a tenth of the peak, and never more than 1e-2 (every default is below it)
        advice = f"train again with a lower --lr, such as {min(self.config.lr / 10, 1e-2):.2g}"
        if not self.config.grad_clip:
            advice += " and --grad-clip 1"
        kept = (
            f"{self.run_dir / 'last'} (step {self.last_eval_step}) is kept"
            if self.last_eval_step > 0
            else "nothing was saved"
        )
        return NextcharError(
            f"training diverged at step {step}: {what} (learning rate {lr:.3g} at this step, "
            f"--lr {self.config.lr:g}); {advice}; {kept}"
        )

    def train_step(self, lr: float, autocast: contextlib.AbstractContextManager) -> torch.Tensor:
        """One optimizer step; the loss of this process's batch, checked to be finite."""
        started = time.perf_counter()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if self.streams is None or self.batches.starts_epoch(self.step):
            self.carry = None  # random windows, or a new pass over the streams
        x, y = self.batches.get(self.step, self.streams)
        if self.streams is None and self.device.type == "cuda":
            # random windows are cut on the host: page-locked memory lets the copy overlap
            x, y = x.pin_memory(), y.pin_memory()
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        with autocast:
            logits, new_carry = self.trained(x, self.carry)  # [B, T, V]
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.carry = detach_state(new_carry)
        self.step += 1
        value = loss.item()  # this process's loss; waits for the step to finish
        self.last_step_seconds = time.perf_counter() - started
        self.step_seconds += self.last_step_seconds
        if not math.isfinite(value):
            raise self.diverged(f"the training loss is {value}", self.step)
        tokens = self.config.batch_size * self.config.seq_len  # the global batch
        self.session_tokens += tokens
        self.window = (self.window[0], self.window[1] + tokens)
        return loss

    def metrics_row(self, loss: torch.Tensor, lr: float) -> dict[str, Any]:
        """The metrics line of this step: every process takes part (the loss is averaged)."""
        now = time.perf_counter()
        cps = self.window[1] * self.train_chars_per_token / max(now - self.window[0], 1e-9)
        self.window = (now, 0)
        loss_value = dist.mean(self.group, loss).item()  # the loss of the global batch
        return {
            "step": self.step,
            "loss": loss_value,
            "lr": lr,
            "chars_per_sec": round(cps),
            "threads": torch.get_num_threads(),  # what the thread tuner runs on now
            "elapsed": round(self.elapsed(), 3),
        }


def _optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    # Decay matrices only: biases and gains have no scale to regularise. Frozen parameters
    # (--freeze-embeddings) are left out, so neither a step nor weight decay moves them.
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
            f"--seq-len {config.seq_len} is longer than the model's context "
            f"({model.context_size}); use --seq-len {model.context_size} or less"
        )
    if config.embeddings is not None:
        require(model, EMBEDDING_INIT, "--embeddings")
        if config.freeze_embeddings and model.config.tie_weights:
            raise NextcharError(
                "--freeze-embeddings with --tie-weights would freeze the output layer too "
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


def _read_data(
    model_config: ModelConfig,
    config: TrainConfig,
    run_dir: Path,
    resume: bool,
    corpus: Corpus | None,
    log: Log,
) -> _Data:
    """The text, encoded, and what a resumed or fine-tuned run starts from."""
    if resume:
        ckpt, saved = read_meta(run_dir / "last")
        resume_state, trainer_state = load_resume_state(ckpt)
        check_budget_left(run_dir, config, trainer_state)
        corpus = corpus or load_corpus(config, tokenizer_from_dict(saved["tokenizer"]))
        if trainer_state["fingerprint"] != corpus.fingerprint:
            raise NextcharError(
                f"the training or validation text differs from what {run_dir} "
                "was trained on; resume with the same files, or start a new run"
            )
        config_ = dataclasses.replace(model_config, vocab_size=corpus.tokenizer.vocab_size)
        return _Data(corpus, config_, None, resume_state, trainer_state, saved)
    if model_config.init is not None:  # fine-tuning: its tokenizer and sizes
        pretrained, tokenizer = load_pretrained(model_config.init, torch.device("cpu"))
        log(
            f"fine-tuning {model_config.init}: {pretrained.describe()}, its BPE "
            f"tokenizer ({tokenizer.vocab_size:,} tokens)"
        )
        corpus = corpus or load_corpus(config, tokenizer)
        config_ = dataclasses.replace(pretrained.config, dropout=model_config.dropout)
        return _Data(corpus, config_, pretrained)
    corpus = corpus or load_corpus(config)
    return _Data(corpus, dataclasses.replace(model_config, vocab_size=corpus.tokenizer.vocab_size))


def _build(data: _Data, config: TrainConfig, log: Log) -> tuple[Any, dict[str, Any] | None]:
    """The model with its starting weights (random, pretrained, or initialised embeddings)."""
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
) -> Run:
    """Read the data, build (or restore) the model, place it on the devices."""
    group = dist.from_env()
    dist.check_batch(group, config.batch_size)
    device = dist.device_for(group, pick_device(config.device))
    if resume and group.is_main:  # before the others can read it (they wait in dist.start)
        recover(run_dir / "last")
        recover(run_dir / "best")
    dist.start(group, device)
    data = _read_data(model_config, config, run_dir, resume, corpus, log)
    model, embedding_info = _build(data, config, log)
    model = model.to(device)
    trained = _wrap_for_devices(model, group, device, config)
    rows = group.rows(config.batch_size)
    batches = Batches(
        data.corpus.train_ids, config.batch_size, config.seq_len, config.batching, config.seed, rows
    )
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
        _restore(run, data.resume_state, data.trainer_state, rows)
    return run


def _restore(run: Run, saved: dict[str, Any], trainer_state: dict[str, Any], rows: slice) -> None:
    """Weights, optimizer, carried state, RNG and position of the run's last/."""
    run.step = run.last_eval_step = int(trainer_state["step"])  # last/ holds this step
    load_weights(run.model, run.run_dir / "last" / WEIGHTS)
    run.optimizer.load_state_dict(saved["optimizer"])
    run.carry = state_from_tensors([t[:, rows] for t in saved["carry"]], run.device)
    _restore_rng(saved, run.group, run.device, run.config.seed + run.step, run.log)
    run.best = float(trainer_state["best_val_bpc"])
    run.elapsed_before = float(trainer_state["elapsed"])


def _restore_rng(
    saved: dict[str, Any],
    group: dist.Group,
    device: torch.device,
    fallback_seed: int,
    log: Callable[[str], None],
) -> None:
    """Each process continues its own random stream; a run resumed with another number of
    processes cannot, so its dropout masks are drawn afresh (the weights are unaffected)."""
    cpu = saved.get("rng_cpu_ranks") or [saved["rng_cpu"]]
    cuda = saved.get("rng_cuda_ranks") or [saved.get("rng_cuda")]
    if len(cpu) != group.world_size:
        if group.is_main:
            log(
                f"resuming on {group.world_size} process(es) a run saved from {len(cpu)}: "
                "random streams (dropout) start afresh"
            )
        torch.manual_seed(fallback_seed + group.rank)
        return
    torch.set_rng_state(cpu[group.rank])
    if device.type == "cuda" and cuda[group.rank] is not None:
        torch.cuda.set_rng_state(cuda[group.rank], device)
