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
import logging
import math
import signal
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from nextchar import __version__
from nextchar.checkpoint import (
    WEIGHTS,
    load_resume_state,
    load_weights,
    read_meta,
    save_checkpoint,
)
from nextchar.config import ModelConfig, TrainConfig
from nextchar.data import Batches, encode, read_text, split_text
from nextchar.errors import NextcharError
from nextchar.evaluate import evaluate_ids
from nextchar.models import State, build_model, count_parameters, detach_state
from nextchar.runtime import pick_device, seed_everything
from nextchar.tokenizers import Tokenizer, build_tokenizer, tokenizer_from_dict

log = logging.getLogger(__name__)


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


def bits(nats: float) -> float:
    return nats / math.log(2)


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
        tokenizer = build_tokenizer(config.tokenizer, train_text, config.normalization, config.unk)  # type: ignore[arg-type]
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
    # Decay matrices only: biases and gains have no scale to regularise.
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": other, "weight_decay": 0.0},
    ]
    if config.optimizer == "adam":
        for g in groups:
            g["weight_decay"] = 0.0
    return torch.optim.AdamW(groups, lr=config.lr)


def _use_bf16(config: TrainConfig, device: torch.device) -> bool:
    if config.precision == "fp32":
        return False
    supported = device.type == "cuda" and torch.cuda.is_bf16_supported()
    if config.precision == "bf16" and not supported:
        raise NextcharError(
            f"--precision bf16 needs a CUDA GPU with bf16 support; this run is "
            f"on {device}: use --precision fp32 or auto"
        )
    return supported


def _state_list(state: State | None) -> list[torch.Tensor]:
    if state is None:
        return []
    return [s.cpu() for s in state] if isinstance(state, tuple) else [state.cpu()]


def _state_from_list(tensors: list[torch.Tensor], cell: str, device: torch.device) -> State | None:
    if not tensors:
        return None
    moved = [t.to(device) for t in tensors]
    return (moved[0], moved[1]) if cell == "lstm" else moved[0]


class _Metrics:
    """Appends one JSON object per line to metrics.jsonl and keeps the curves for the plot."""

    def __init__(self, path: Path, start_step: int) -> None:
        self.path = path
        self.train: list[tuple[int, float]] = []
        self.val: list[tuple[int, float]] = []
        if path.exists():  # resuming: keep history up to the resumed step only
            kept = []
            for line in path.read_text().splitlines():
                row = json.loads(line)
                if row["step"] <= start_step:
                    kept.append(line)
                    self._remember(row)
            path.write_text("".join(k + "\n" for k in kept))

    def _remember(self, row: dict[str, Any]) -> None:
        if "loss" in row:
            self.train.append((row["step"], row["loss"]))
        if "val_bpc" in row:
            self.val.append((row["step"], row["val_bpc"]))

    def write(self, **row: Any) -> None:
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


def train(
    model_config: ModelConfig,
    config: TrainConfig,
    run_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    should_stop: Callable[[int], bool] | None = None,
    corpus: Corpus | None = None,
) -> TrainResult:
    """Train (or, with resume=True, continue the run in `run_dir`) and return the summary.

    `should_stop(step)` is checked after every step, like Ctrl-C: the run stops there and
    saves a resumable checkpoint.
    """
    run_dir = Path(run_dir)
    device = pick_device(config.device)
    resume_state: dict[str, Any] = {}
    trainer_state: dict[str, Any] = {}
    if resume:
        ckpt, meta = read_meta(run_dir / "last")
        resume_state, trainer_state = load_resume_state(ckpt)
        corpus = corpus or load_corpus(config, tokenizer_from_dict(meta["tokenizer"]))
        if trainer_state.get("fingerprint") != corpus.fingerprint:
            raise NextcharError(
                f"the training or validation text differs from what {run_dir} "
                "was trained on; resume with the same files, or start a new run"
            )
    else:
        if (run_dir / "last").exists():
            raise NextcharError(
                f"{run_dir} already holds a run; continue it with --resume "
                f"{run_dir}, or choose another --out directory"
            )
        corpus = corpus or load_corpus(config)
    model_config = dataclasses.replace(model_config, vocab_size=corpus.tokenizer.vocab_size)

    seed_everything(config.seed)
    model = build_model(model_config).to(device)
    optimizer = _optimizer(model, config)
    batches = Batches(
        corpus.train_ids, config.batch_size, config.seq_len, config.batching, config.seed
    )
    streams = batches.streams.to(device) if config.batching == "streams" else None
    start_step, best, elapsed_before = 0, math.inf, 0.0
    carry: State | None = None
    if resume:
        load_weights(model, run_dir / "last" / WEIGHTS)
        optimizer.load_state_dict(resume_state["optimizer"])
        carry = _state_from_list(resume_state["carry"], model_config.cell, device)
        torch.set_rng_state(resume_state["rng_cpu"])
        if device.type == "cuda" and resume_state.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(resume_state["rng_cuda"], device)
        start_step = int(trainer_state["step"])
        best = float(trainer_state["best_val_bpc"])
        elapsed_before = float(trainer_state["elapsed"])
    run_dir.mkdir(parents=True, exist_ok=True)

    bf16 = _use_bf16(config, device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    chars_per_token = corpus.train_chars / max(1, corpus.train_ids.numel())
    val_ids = corpus.val_ids if config.eval_tokens is None else corpus.val_ids[: config.eval_tokens]
    # bits per *character*: a token of a byte or NFD tokenizer is less than one character
    val_chars_per_token = corpus.val_chars / corpus.val_ids.numel()
    metrics = _Metrics(run_dir / "metrics.jsonl", start_step)
    meta = {
        "train": config.to_dict(),
        "nextchar_version": __version__,
        "parameters": count_parameters(model),
    }

    def validate(ids: torch.Tensor) -> float:
        nll, tokens, _ = evaluate_ids(model, ids, batch_size=16, seq_len=256)
        return bits(nll / (tokens * val_chars_per_token))

    def save(step: int, val_bpc: float | None, elapsed: float) -> None:
        info = {**meta, "step": step, "val_bpc": val_bpc}
        # Saved at a step boundary: the RNG state is the one the next step starts from, so
        # dropout masks after a resume are those of an uninterrupted run.
        resume_blob = {
            "optimizer": optimizer.state_dict(),
            "carry": _state_list(carry),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        }
        state = {
            "step": step,
            "best_val_bpc": best,
            "elapsed": elapsed,
            "fingerprint": corpus.fingerprint,
        }
        save_checkpoint(run_dir / "last", model, corpus.tokenizer, info, resume_blob, state)

    def evaluate_and_save(step: int, elapsed: float) -> float:
        """Validation bpc now; `best/` if it improved; always a resumable `last/`."""
        nonlocal best, last_eval_step
        val_bpc = validate(val_ids)
        metrics.write(step=step, val_bpc=val_bpc)
        if val_bpc < best:
            best = val_bpc
            info = {**meta, "step": step, "val_bpc": val_bpc}
            save_checkpoint(run_dir / "best", model, corpus.tokenizer, info)
        save(step, val_bpc, elapsed)
        last_eval_step = step
        return val_bpc

    step = start_step
    last_eval_step = -1
    interrupted = False
    val_bpc: float | None = None
    start = time.perf_counter()
    window_start, window_tokens = start, 0
    total = config.max_steps
    bar = tqdm(
        total=total,
        initial=start_step,
        disable=not progress,
        unit="step",
        dynamic_ncols=True,
        desc=run_dir.name,
    )
    with _interrupt_flag() as flag:
        while total is None or step < total:
            elapsed = elapsed_before + time.perf_counter() - start
            if config.max_time is not None and elapsed >= config.max_time:
                break
            progress_frac = elapsed / config.max_time if config.max_time else 0.0
            lr = lr_at(step, config, progress_frac)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if streams is None or batches.starts_epoch(step):
                carry = None  # random windows, or a new pass over the streams
            x, y = batches.get(step, streams)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with autocast:
                logits, new_carry = model(x, carry)  # [B, T, V]
            loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            carry = detach_state(new_carry)
            step += 1
            window_tokens += x.numel()
            bar.update(1)

            if step % config.log_every == 0 or step == total:
                now = time.perf_counter()
                cps = window_tokens * chars_per_token / max(now - window_start, 1e-9)
                window_start, window_tokens = now, 0
                loss_value = loss.item()
                metrics.write(
                    step=step,
                    loss=loss_value,
                    lr=lr,
                    chars_per_sec=round(cps),
                    elapsed=round(elapsed_before + now - start, 3),
                )
                bar.set_postfix_str(
                    f"loss {loss_value:.3f}  val {val_bpc or float('nan'):.3f} "
                    f"bpc  {cps:,.0f} char/s",
                    refresh=False,
                )
            stop = flag["stop"] or (should_stop is not None and should_stop(step))
            if step % config.eval_every == 0 or step == total or stop:
                val_bpc = evaluate_and_save(step, elapsed_before + time.perf_counter() - start)
                window_start = time.perf_counter()  # evaluation is not training speed
            if stop:
                interrupted = True
                break
    bar.close()
    elapsed = elapsed_before + time.perf_counter() - start
    if not interrupted and last_eval_step != step:
        # stopped by the time budget between evaluations: record and save where we are
        val_bpc = evaluate_and_save(step, elapsed)
    plot_curves(
        metrics,
        run_dir / "curves.png",
        f"{run_dir.name}: {model_config.cell} {model_config.num_layers}x"
        f"{model_config.hidden_size}, {count_parameters(model):,} parameters",
    )
    final = best
    if not interrupted:
        best_model = build_model(model_config).to(device)
        load_weights(best_model, run_dir / "best" / WEIGHTS)
        nll, tokens, _ = evaluate_ids(best_model, corpus.val_ids, 16, 256)
        final = bits(nll / (tokens * val_chars_per_token))
    return TrainResult(
        run_dir,
        step,
        best,
        final,
        elapsed,
        _mean_speed(run_dir / "metrics.jsonl"),
        interrupted,
        count_parameters(model),
    )


def _mean_speed(path: Path) -> float:
    speeds = [
        row["chars_per_sec"]
        for row in map(json.loads, path.read_text().splitlines())
        if "chars_per_sec" in row
    ]
    return sum(speeds) / len(speeds) if speeds else 0.0


def resume_config(run_dir: str | Path, **overrides: Any) -> tuple[ModelConfig, TrainConfig]:
    """The model and training configs a run was started with, with budget overrides."""
    _, meta = read_meta(Path(run_dir) / "last")
    config = TrainConfig.from_dict(meta["train"])
    allowed = {"max_steps", "max_time", "device", "eval_every", "log_every"}
    unknown = set(overrides) - allowed
    if unknown:
        raise NextcharError(
            f"cannot change {', '.join(sorted(unknown))} when resuming; only "
            f"{', '.join(sorted(allowed))}"
        )
    config = dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})
    return ModelConfig.from_dict(meta["model"]), config
