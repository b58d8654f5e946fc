"""The one training loop, for every model kind: batches in, optimizer steps out, with
evaluation, checkpoints, metrics and the learning-rate schedule plugged in around it.

A run directory holds `last/` (resumable: optimizer, carried state, RNG), `best/` (lowest
validation bpc), `metrics.jsonl` and `curves.png`. Everything that decides the next step's
numbers -- weights, optimizer moments, the carried hidden state, the RNG, the step -- is saved,
so an interrupted and resumed run computes the same losses as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import shutil
import signal
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from nextchar import __version__
from nextchar import distributed as dist
from nextchar.checkpoint import (
    WEIGHTS,
    load_resume_state,
    load_weights,
    read_meta,
    recover,
    save_checkpoint,
)
from nextchar.config import ModelConfig, TrainConfig
from nextchar.data import Batches, encode, read_text, split_text
from nextchar.errors import NextcharError
from nextchar.evaluate import bits, evaluate_ids
from nextchar.models import State, build_model, count_parameters, describe, detach_state
from nextchar.progress import progress as progress_bar
from nextchar.runtime import cpu_bf16_supported, pick_device, seed_everything
from nextchar.tokenizers import Tokenizer, build_tokenizer, tokenizer_from_dict

# ----------------------------------------------------------------------------- pure maths


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


# ----------------------------------------------------------------------------- data


@dataclass
class Corpus:
    tokenizer: Tokenizer
    train_ids: torch.Tensor  # [N] flat ids, smallest dtype
    val_ids: torch.Tensor
    train_chars: int  # NFC characters of the training text (for characters/s)
    val_chars: int  # NFC characters of the validation text (for bits per character)
    fingerprint: str  # sha256 of train + validation text: resuming on other data is refused


def load_corpus(config: TrainConfig, tokenizer: Tokenizer | None = None) -> Corpus:
    """Read, split, build the tokenizer (unless given) and encode both parts once."""
    if not config.files:
        raise NextcharError("no training text: give one or more files or directories")
    text = read_text(config.files, config.encoding, config.errors)
    if config.val_file is not None:
        train_text, val_text = text, read_text(config.val_file, config.encoding, config.errors)
    else:
        train_text, val_text = split_text(text, config.val_fraction)
    if not train_text.strip():
        raise NextcharError(f"the training text in {', '.join(config.files)} is empty")
    if tokenizer is None:
        tokenizer = build_tokenizer(
            config.tokenizer,
            train_text,
            config.normalization,  # type: ignore[arg-type]
            config.unk,
            config.min_freq,
            config.max_vocab,
            config.word_split,
            config.lowercase,
            config.bpe_vocab,
            held_out=val_text,
        )
        if tokenizer.vocab_size < 2:
            raise NextcharError(
                "the training text has a single distinct character: there is nothing to learn"
            )
    try:
        val_ids = encode(tokenizer, val_text)
    except NextcharError as exc:
        raise NextcharError(f"validation text: {exc}") from None
    if val_ids.numel() < 2:
        raise NextcharError(
            "the validation text is shorter than 2 tokens; give a longer "
            "--val-file or a larger --val-fraction"
        )
    return Corpus(
        tokenizer,
        encode(tokenizer, train_text),
        val_ids,
        len(unicodedata.normalize("NFC", train_text)),
        len(unicodedata.normalize("NFC", val_text)),
        _fingerprint(train_text, val_text),
    )


def _fingerprint(train_text: str, val_text: str) -> str:
    digest = hashlib.sha256()
    for part in (train_text, "\0", val_text):
        digest.update(part.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


# ----------------------------------------------------------------------------- the loop


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    best_val_bpc: float
    final_val_bpc: float  # on the whole validation text, at the end
    seconds: float
    chars_per_second: float
    interrupted: bool
    parameters: int
    unit: str  # what one token is: character, byte, word
    val_chars_per_token: float

    @property
    def final_val_perplexity(self) -> float:
        """exp(nats per token) on the validation text: per word for a word model."""
        return math.exp(self.final_val_bpc * math.log(2) * self.val_chars_per_token)


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
    return torch.optim.AdamW(groups, lr=config.lr)


def autocast_for(
    precision: str, device: torch.device, kind: str = "recurrent"
) -> contextlib.AbstractContextManager:
    """The mixed-precision context of a training step. `auto` is what measured fastest at
    the same validation bpc (README, "Precision"): bf16 for GPT-2 on CUDA GPUs that support
    it (2.75x fp32 on an H200), fp32 for recurrent models (cuDNN already runs fp32 RNNs on
    TF32 tensor cores; bf16 was 0.86-0.98x) and on CPUs (bf16 pays only with AMX)."""
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" and kind == "gpt2" else "fp32"
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            precision = "fp32"
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


def _state_tensors(state: State | None) -> list[torch.Tensor]:
    if state is None:
        return []
    return list(state) if isinstance(state, tuple) else [state]


def _state_from_list(tensors: list[torch.Tensor], cell: str, device: torch.device) -> State | None:
    if not tensors:
        return None
    moved = [t.to(device) for t in tensors]
    return (moved[0], moved[1]) if cell == "lstm" else moved[0]


def _metrics_row(line: str) -> dict[str, Any] | None:
    """One metrics.jsonl line as a dict with an integer step, or None if it is not one."""
    try:
        row = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(row, dict) or not isinstance(row.get("step"), int):
        return None
    numbers = [row.get(k) for k in ("loss", "val_bpc") if k in row]
    return row if all(isinstance(v, (int, float)) for v in numbers) else None


class _Metrics:
    """Appends one JSON object per line to metrics.jsonl and keeps the curves for the plot.
    Only the main process writes (`enabled`)."""

    def __init__(self, path: Path, start_step: int, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled
        self.train: list[tuple[int, float]] = []
        self.val: list[tuple[int, float]] = []
        if enabled and path.exists():  # resuming: keep history up to the resumed step only
            kept = []
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                row = _metrics_row(line)
                # a line cut short by a kill, or blank, or edited by hand: history, not state
                if row is not None and row["step"] <= start_step:
                    kept.append(line)
                    self._remember(row)
            path.write_text("".join(k + "\n" for k in kept))

    def _remember(self, row: dict[str, Any]) -> None:
        if "loss" in row:
            self.train.append((row["step"], row["loss"]))
        if "val_bpc" in row:
            self.val.append((row["step"], row["val_bpc"]))

    def write(self, **row: Any) -> None:
        if not self.enabled:
            return
        self._remember(row)
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")


def plot_curves(metrics: _Metrics, path: Path, title: str) -> None:
    """Training and validation curves in bits, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    if metrics.train:
        steps, losses = zip(*metrics.train, strict=True)
        ax.plot(steps, [bits(v) for v in losses], lw=1, alpha=0.7, label="train (bits per token)")
    if metrics.val:
        steps, values = zip(*metrics.val, strict=True)
        ax.plot(steps, values, "o-", lw=2, ms=3, label="validation (bits per character)")
    ax.set_xlabel("step")
    ax.set_ylabel("bits")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


@dataclass
class _Run:
    """What one run owns between steps; its methods are the pieces of the loop."""

    config: TrainConfig
    run_dir: Path
    device: torch.device
    corpus: Corpus
    model: torch.nn.Module  # the model itself: evaluated and saved
    trained: torch.nn.Module  # what the steps run: the model, or DDP around it
    group: dist.Group
    optimizer: torch.optim.Optimizer
    batches: Batches
    streams: torch.Tensor | None  # [B, N/B] on the device (streams mode)
    metrics: _Metrics
    meta: dict[str, Any]  # what every checkpoint's config.json records
    log: Callable[[str], None]
    step: int = 0
    best: float = math.inf
    elapsed_before: float = 0.0  # seconds spent before a resume
    carry: State | None = None  # the hidden state carried into the next window
    last_eval_step: int = -1

    @property
    def val_chars_per_token(self) -> float:
        # bits per *character*: a token of a byte or NFD tokenizer is less than one character
        return self.corpus.val_chars / self.corpus.val_ids.numel()

    def validate(self, model: torch.nn.Module, full: bool = False, progress: bool = False) -> float:
        ids = self.corpus.val_ids
        if not full and self.config.eval_tokens is not None:
            ids = ids[: self.config.eval_tokens]
        if full and not progress:  # --quiet: one line, so a long evaluation is not silence
            self.log(f"evaluating the best checkpoint on {self.corpus.val_chars:,} characters…")
        desc = "final eval" if full else "eval"
        try:
            nll, tokens, _ = evaluate_ids(
                model, ids, batch_size=16, seq_len=256, progress=progress, desc=desc
            )
        except NextcharError:  # a non-finite NLL: the weights went bad during the last steps
            raise self.diverged("the validation loss is not finite", self.step) from None
        return bits(nll / (tokens * self.val_chars_per_token))

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
        return loss

    def evaluate_and_save(self, elapsed: float, progress: bool = False) -> float | None:
        """Validation bpc now; `best/` if it improved; always a resumable `last/`. Every
        process takes part (the carried state and RNG of all are saved); the main process
        evaluates and writes, and the others get None."""
        # Saved at a step boundary: the RNG state is the one the next step starts from, so
        # dropout masks after a resume are those of an uninterrupted run.
        cuda = self.device.type == "cuda"
        # gathered where the state lives (NCCL moves GPU tensors only), then kept on the CPU
        carry = [dist.gather_rows(self.group, s, dim=1).cpu() for s in _state_tensors(self.carry)]
        rng_cpu = dist.gather_bytes(self.group, torch.get_rng_state())
        rng_cuda = (
            dist.gather_bytes(self.group, torch.cuda.get_rng_state(self.device)) if cuda else None
        )
        self.last_eval_step = self.step
        if not self.group.is_main:
            return None
        val_bpc = self.validate(self.model, progress=progress)
        self.metrics.write(step=self.step, val_bpc=val_bpc)
        info = {**self.meta, "step": self.step, "val_bpc": val_bpc}
        if val_bpc < self.best:
            self.best = val_bpc
            save_checkpoint(self.run_dir / "best", self.model, self.corpus.tokenizer, info)
        resume_blob = {
            "optimizer": self.optimizer.state_dict(),
            "carry": carry,  # [layers, global batch, hidden]: the layout of one process
            "rng_cpu": rng_cpu[0],
            "rng_cuda": rng_cuda[0] if rng_cuda else None,
            "rng_cpu_ranks": rng_cpu,
            "rng_cuda_ranks": rng_cuda,
        }
        state = {
            "step": self.step,
            "best_val_bpc": self.best,
            "elapsed": elapsed,
            "fingerprint": self.corpus.fingerprint,
        }
        save_checkpoint(
            self.run_dir / "last", self.model, self.corpus.tokenizer, info, resume_blob, state
        )
        return val_bpc


def _check_embedding_options(model_config: ModelConfig, config: TrainConfig) -> None:
    if model_config.kind == "gpt2" and config.seq_len > model_config.block_size:
        raise NextcharError(
            f"--seq-len {config.seq_len} is longer than the GPT-2 context "
            f"({model_config.block_size}); use --seq-len {model_config.block_size} or less"
        )
    if config.embeddings is None:
        return
    if model_config.kind == "gpt2":
        raise NextcharError("--embeddings initialises a recurrent model's input embedding only")
    if model_config.input != "embedding":
        raise NextcharError(
            "--embeddings initialises an embedding; one-hot input has none: use --input embedding"
        )
    if config.freeze_embeddings and model_config.tie_weights:
        raise NextcharError(
            "--freeze-embeddings with --tie-weights would freeze the output layer too (they "
            "share one matrix); drop one of them"
        )


def _open_run(
    model_config: ModelConfig,
    config: TrainConfig,
    run_dir: Path,
    resume: bool,
    corpus: Corpus | None,
    log: Callable[[str], None],
) -> _Run:
    """Read the data and build (or, resuming, restore) model, optimizer and position."""
    group = dist.from_env()
    dist.check_batch(group, config.batch_size)
    device = dist.device_for(group, pick_device(config.device))
    if resume and group.is_main:  # before the others can read it (they wait in dist.start)
        recover(run_dir / "last")
        recover(run_dir / "best")
    dist.start(group, device)
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
    pretrained = None
    if model_config.init is not None and not resume:  # fine-tuning: its tokenizer and sizes
        from nextchar.models.gpt2 import load_pretrained

        pretrained, tokenizer = load_pretrained(model_config.init, torch.device("cpu"))
        log(
            f"fine-tuning {model_config.init}: {describe(pretrained.config)}, its BPE "
            f"tokenizer ({tokenizer.vocab_size:,} tokens)"
        )
        corpus = corpus or load_corpus(config, tokenizer)
        model_config = dataclasses.replace(pretrained.config, dropout=model_config.dropout)
    corpus = corpus or load_corpus(config)
    if pretrained is None:
        model_config = dataclasses.replace(model_config, vocab_size=corpus.tokenizer.vocab_size)
    _check_embedding_options(model_config, config)
    seed_everything(config.seed)
    model = build_model(model_config)
    if pretrained is not None:
        model.load_state_dict(pretrained.state_dict())
    embedding_info = None
    if config.embeddings is not None and not resume:  # resuming loads the trained rows
        from nextchar.embeddings import initialise_from_config

        report = initialise_from_config(
            model,
            corpus.tokenizer,
            corpus.train_ids,
            config.embeddings,
            config.w2v_algorithm,
            config.w2v_window,
            config.w2v_epochs,
            config.seed,
        )
        log(report.line())
        embedding_info = report.to_dict()
    if config.freeze_embeddings and model.embedding is not None:
        model.embedding.weight.requires_grad_(False)
    model = model.to(device)
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
    optimizer = _optimizer(model, config)
    rows = group.rows(config.batch_size)
    batches = Batches(
        corpus.train_ids, config.batch_size, config.seq_len, config.batching, config.seed, rows
    )
    streams = batches.streams.to(device) if config.batching == "streams" else None
    start_step = int(trainer_state["step"]) if resume else 0
    if group.is_main:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise NextcharError(
                f"cannot create the run directory {run_dir} ({exc.strerror}); choose another --out"
            ) from None
    meta: dict[str, Any] = {
        "train": config.to_dict(),
        "nextchar_version": __version__,
        "parameters": count_parameters(model),
    }
    if resume and "embeddings" in saved:
        meta["embeddings"] = saved["embeddings"]
    elif embedding_info is not None:
        meta["embeddings"] = embedding_info
    run = _Run(
        config,
        run_dir,
        device,
        corpus,
        model,
        trained,
        group,
        optimizer,
        batches,
        streams,
        _Metrics(run_dir / "metrics.jsonl", start_step, enabled=group.is_main),
        meta,
        log,
        step=start_step,
        last_eval_step=start_step if resume else -1,  # last/ holds the resumed step
    )
    if resume:
        load_weights(model, run_dir / "last" / WEIGHTS)
        optimizer.load_state_dict(resume_state["optimizer"])
        carry = [t[:, rows] for t in resume_state["carry"]]  # this process's rows
        run.carry = _state_from_list(carry, model_config.cell, device)
        _restore_rng(resume_state, group, device, config.seed + start_step, log)
        run.best = float(trainer_state["best_val_bpc"])
        run.elapsed_before = float(trainer_state["elapsed"])
    return run


def check_new_run_dir(run_dir: Path) -> None:
    """A new run writes best/, last/, metrics.jsonl and curves.png into its directory, and a
    save replaces what has those names: it starts only in a new or empty directory, so
    nothing of the user's is ever overwritten."""
    if run_dir.exists() and not run_dir.is_dir():
        raise NextcharError(f"--out {run_dir} is a file; give a directory for the run")
    if not run_dir.is_dir():
        return
    if any((run_dir / name).exists() for name in ("last", "last.old")):
        raise NextcharError(
            f"{run_dir} already holds a run; continue it with --resume "
            f"{run_dir}, or choose another --out directory"
        )
    inside = sorted(p.name for p in run_dir.iterdir())
    if inside:
        shown = ", ".join(inside[:3]) + (f" and {len(inside) - 3} more" if len(inside) > 3 else "")
        raise NextcharError(
            f"{run_dir} is not empty (it holds {shown}); a new run needs a new or empty "
            "directory: choose another --out"
        )


def check_budget_left(run_dir: Path, config: TrainConfig, trainer_state: dict[str, Any]) -> None:
    """Resuming must train: a budget already spent would 'succeed' having done nothing."""
    step, spent = int(trainer_state["step"]), float(trainer_state["elapsed"])
    if config.max_steps is not None and step >= config.max_steps:
        raise NextcharError(
            f"{run_dir} is at step {step} already and --max-steps is {config.max_steps}: "
            f"nothing is left to train; give a larger --max-steps (such as {step * 2})"
        )
    if config.max_time is not None and spent >= config.max_time:
        raise NextcharError(
            f"{run_dir} has used its --max-time ({spent:.0f} s of {config.max_time:.0f} s): "
            "nothing is left to train; give a larger --max-time, or --max-steps alone"
        )


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


def train(
    model_config: ModelConfig,
    config: TrainConfig,
    run_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    should_stop: Callable[[int], bool] | None = None,
    corpus: Corpus | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train (or, with resume=True, continue the run in `run_dir`) and return the summary.

    `should_stop(step)` is checked after every step, like Ctrl-C: the run stops there and
    saves a resumable checkpoint. `log` receives one-line reports made before training
    starts (such as how the embedding was initialised).
    """
    run_dir = Path(run_dir)
    if not resume:
        check_new_run_dir(run_dir)
    existed = run_dir.exists()
    try:
        run = _open_run(model_config, config, run_dir, resume, corpus, log or (lambda _: None))
        return _loop(run, progress, should_stop)
    except BaseException:
        if not resume and dist.from_env().is_main:
            _remove_unsaved_run(run_dir, existed)
        raise
    finally:  # also when opening the run failed after joining the process group
        dist.stop(dist.from_env())


def _remove_unsaved_run(run_dir: Path, existed: bool) -> None:
    """A new run that failed before its first checkpoint (bad data, divergence at step 3)
    leaves its directory as it found it, so the same --out works on the next try. The
    directory was new or empty when the run began: everything in it is the run's own."""
    names = ("best", "last", "best.old", "last.old")
    if not run_dir.is_dir() or any((run_dir / name).exists() for name in names):
        return
    for path in run_dir.iterdir():
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    if not existed:
        with contextlib.suppress(OSError):
            run_dir.rmdir()


def _loop(run: _Run, progress: bool, should_stop: Callable[[int], bool] | None) -> TrainResult:
    config, group = run.config, run.group
    autocast = autocast_for(config.precision, run.device, run.model.config.kind)
    chars_per_token = run.corpus.train_chars / max(1, run.corpus.train_ids.numel())
    total, interrupted, val_bpc = config.max_steps, False, None
    start = time.perf_counter()
    window_start, window_tokens = start, 0
    step_seconds, session_tokens = 0.0, 0  # time in optimizer steps: the training speed

    def elapsed() -> float:
        return run.elapsed_before + time.perf_counter() - start

    bar = progress_bar(
        total=total,
        initial=run.step,
        enabled=progress and group.is_main,
        unit="step",
        desc=run.run_dir.name,
    )
    asked = False
    with _interrupt_flag() as flag:
        while total is None or run.step < total:
            # Every process must stop at the same step and follow the same clock (the
            # learning rate may follow it): rank 0's time, and stop if any process asks.
            spent, stop = dist.agree(group, elapsed(), asked, run.device)
            if stop:
                if run.last_eval_step != run.step:
                    run.evaluate_and_save(spent)
                interrupted = True
                break
            if config.max_time is not None and spent >= config.max_time:
                break
            lr = lr_at(run.step, config, spent / config.max_time if config.max_time else 0.0)
            step_start = time.perf_counter()
            loss = run.train_step(lr, autocast)
            loss_value = loss.item()  # this process's loss; waits for the step to finish
            step_seconds += time.perf_counter() - step_start
            if not math.isfinite(loss_value):
                raise run.diverged(f"the training loss is {loss_value}", run.step)
            window_tokens += config.batch_size * config.seq_len  # the global batch
            session_tokens += config.batch_size * config.seq_len
            bar.update(1)
            if run.step % config.log_every == 0 or run.step == total:
                now = time.perf_counter()
                cps = window_tokens * chars_per_token / max(now - window_start, 1e-9)
                window_start, window_tokens = now, 0
                loss_value = dist.mean(group, loss).item()  # the loss of the global batch
                run.metrics.write(
                    step=run.step,
                    loss=loss_value,
                    lr=lr,
                    chars_per_sec=round(cps),
                    elapsed=round(elapsed(), 3),
                )
                val_text = "-" if val_bpc is None else f"{val_bpc:.3f}"
                bar.set_postfix_str(
                    f"loss {loss_value:.3f}  val {val_text} bpc  {cps:,.0f} char/s",
                    refresh=False,
                )
            asked = flag["stop"] or (should_stop is not None and should_stop(run.step))
            if run.step % config.eval_every == 0 or run.step == total:
                val_bpc = run.evaluate_and_save(elapsed(), progress)
                window_start = time.perf_counter()  # evaluation is not training speed
    bar.close()
    seconds = dist.agree(group, elapsed(), False, run.device)[0]
    if not interrupted and run.last_eval_step != run.step:
        # stopped by the time budget between evaluations: record and save where we are
        run.evaluate_and_save(seconds, progress)
    mc = run.model.config
    final = run.best
    if group.is_main:
        plot_curves(
            run.metrics,
            run.run_dir / "curves.png",
            f"{run.run_dir.name}: {describe(mc)}, {count_parameters(run.model):,} parameters",
        )
        if not interrupted:  # the number users quote: the best checkpoint on all validation text
            best_model = build_model(mc).to(run.device)
            load_weights(best_model, run.run_dir / "best" / WEIGHTS)
            final = run.validate(best_model, full=True, progress=progress)
    return TrainResult(
        run.run_dir,
        run.step,
        run.best,
        final,
        seconds,
        session_tokens * chars_per_token / step_seconds if step_seconds else 0.0,
        interrupted,
        count_parameters(run.model),
        run.corpus.tokenizer.unit,
        run.val_chars_per_token,
    )


# What may change when a run is resumed: its budget and bookkeeping, never what it learns from.
RESUME_OVERRIDES = ("max_steps", "max_time", "device", "eval_every", "log_every", "compile")


def resume_config(run_dir: str | Path, **overrides: Any) -> tuple[ModelConfig, TrainConfig]:
    """The model and training configs a run was started with, with budget overrides."""
    ckpt, meta = read_meta(Path(run_dir) / "last")
    if not isinstance(meta.get("train"), dict):
        raise NextcharError(f"{ckpt} records no training settings ('train'): it cannot be resumed")
    config = TrainConfig.from_dict(meta["train"])
    unknown = set(overrides) - set(RESUME_OVERRIDES)
    if unknown:
        raise NextcharError(
            f"cannot change {', '.join(sorted(unknown))} when resuming; only "
            f"{', '.join(RESUME_OVERRIDES)}"
        )
    given = {k: v for k, v in overrides.items() if v is not None}
    if "max_steps" in given and "max_time" not in given:
        # a new step budget replaces the old one whole: a run stopped by --max-time would
        # otherwise stop again at once, its time already spent
        given["max_time"] = None
    config = dataclasses.replace(config, **given)
    return ModelConfig.from_dict(meta["model"]), config
