"""Evaluation: total negative log-likelihood of a text under a model, and the numbers derived
from it. Bits per character is the one number that compares models whatever their tokenizer:
total NLL in nats / number of characters / ln 2.
"""

from __future__ import annotations

import contextlib
import math
import time
import unicodedata
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nextchar.core.errors import NextcharError, broken_weights
from nextchar.core.options import flag
from nextchar.core.runtime import ThreadTuner
from nextchar.display.progress import progress as progress_bar
from nextchar.inference.dynamic import DynamicConfig, dynamic_evaluate_ids
from nextchar.models import detach_state, model_device
from nextchar.text.data import encode
from nextchar.text.tokenizers import Tokenizer


def bits(nats: float) -> float:
    """Nats to bits."""
    return nats / math.log(2)


@dataclass(frozen=True)
class EvalResult:
    nll: float  # total negative log-likelihood in nats over the predicted tokens
    tokens: int  # predicted tokens (every token but the first, which is given)
    chars: int  # characters (NFC code points) those tokens spell
    correct: int  # tokens whose argmax prediction was right
    unknown: int = 0  # units (characters, words) of the text outside the vocabulary

    @property
    def nats_per_token(self) -> float:
        return self.nll / self.tokens

    @property
    def nats_per_char(self) -> float:
        return self.nll / self.chars

    @property
    def bits_per_char(self) -> float:
        return bits(self.nats_per_char)

    @property
    def perplexity(self) -> float:
        """exp(nats per token): per token of this model's tokenizer, not comparable across
        tokenizers (bits per character is)."""
        return math.exp(self.nats_per_token)

    @property
    def accuracy(self) -> float:
        return self.correct / self.tokens


def _window_plan(n: int, context: int, stride: int) -> list[tuple[int, int, int]]:
    """(begin, end, tokens newly scored at the end) for windows over n ids: every id but the
    first is scored by exactly one window."""
    plan: list[tuple[int, int, int]] = []
    scored = 1  # ids[0] is given, never predicted
    for begin in range(0, max(1, n - 1), stride):
        end = min(begin + context, n)
        if end > scored:
            plan.append((begin, end, end - scored))
            scored = end
        if end == n:
            break
    return plan


@torch.no_grad()
def token_surprise(model: nn.Module, ids: list[int]) -> list[float]:
    """Surprise in bits of each id given the ones before it: -log2 p(ids[t] | ids[:t]) for
    t = 1..N-1 (the first id is given). Bounded-context models slide half-context windows."""
    if len(ids) < 2:
        return []
    model.eval()
    device = model_device(model)
    tensor = torch.tensor(ids, device=device)
    context = model.context_size
    plan = _window_plan(len(ids), context, max(1, context // 2)) if context else None
    out: list[float] = []
    for begin, end, new in plan or [(0, len(ids), len(ids) - 1)]:
        logits, _ = model(tensor[begin : end - 1].unsqueeze(0))
        nll = F.cross_entropy(logits[0].float(), tensor[begin + 1 : end], reduction="none")
        out.extend((nll[-new:] / math.log(2)).tolist())
    return out


@torch.no_grad()
def _evaluate_windows(
    model: nn.Module,
    ids: torch.Tensor,
    context: int,
    stride: int,
    batch_size: int,
    progress: bool,
    desc: str = "eval",
) -> tuple[float, int, int]:
    """A bounded-context model (GPT-2): windows of `context` tokens moved by `stride`; each
    window scores only the tokens the previous one did not, so every token is predicted once,
    with at least context - stride tokens before it (all of them near the start). Windows of
    equal length run `batch_size` at a time."""
    if not 0 < stride <= context:
        raise NextcharError(f"{flag('stride')} must be in 1..{context} (the context), got {stride}")
    ids = ids.long()
    n = ids.numel()
    plan = _window_plan(n, context, stride)
    was_training = model.training
    model.eval()
    device = model_device(model)
    nll = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    batches: list[list[tuple[int, int, int]]] = []
    for window in plan:  # consecutive windows of one length share a batch
        last = batches[-1] if batches else None
        same = last and len(last) < batch_size and last[0][1] - last[0][0] == window[1] - window[0]
        if same:
            last.append(window)  # type: ignore[union-attr]
        else:
            batches.append([window])
    # like the streams: a long evaluation times its batches and keeps the fastest thread count
    tuner = ThreadTuner(enabled=device.type == "cpu" and len(batches) > 20)
    bar = progress_bar(batches, desc=desc, unit="batch", enabled=progress, leave=False)
    with contextlib.closing(tuner):
        for batch in bar:
            started = time.perf_counter()
            rows = torch.stack([ids[b:e] for b, e, _ in batch]).to(device)  # [B, L]
            logits, _ = model(rows[:, :-1])
            targets = rows[:, 1:]
            length = targets.shape[1]
            new = torch.tensor([k for _, _, k in batch], device=device)
            # score only each window's last `new` positions
            mask = torch.arange(length, device=device).unsqueeze(0) >= (length - new).unsqueeze(1)
            losses = F.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none")
            nll += (losses * mask).sum()
            correct += ((logits.argmax(-1) == targets) & mask).sum()
            tuner.record(time.perf_counter() - started)
    model.train(was_training)
    return float(nll), n - 1, int(correct)


# Texts scored at once by default. Recurrent streams: the wider the batch, the larger each
# step's matrix product and the faster a CPU runs it (the streams' warm-up keeps the number);
# GPT-2 windows: every window's logits over the whole vocabulary are held at once.
STREAMS = 128
WINDOWS = 16
LOGITS = 2**26  # logits one window of streams may hold (256 MB of float32)


@torch.no_grad()
def evaluate_ids(
    model: nn.Module,
    ids: torch.Tensor,
    batch_size: int | None = None,
    seq_len: int = 256,
    progress: bool = False,
    stride: int | None = None,
    desc: str = "eval",
) -> tuple[float, int, int]:
    """(total NLL in nats, predicted tokens, correct) for ids [N], predicting ids[1:].

    Recurrent models: the text is cut into B contiguous streams whose state is carried from
    window to window; the few ids left over continue the last stream's state, so every token
    is predicted; each stream starts from the state of the text before it. Models with a
    bounded context (GPT-2) slide a window instead (`stride`, default half the context),
    `batch_size` windows at a time. `batch_size` None: STREAMS or WINDOWS.
    """
    if ids.numel() < 2:
        raise NextcharError("the text is too short to evaluate: it needs at least 2 tokens")
    context = model.context_size
    if context is not None:
        return _check_finite(
            _evaluate_windows(
                model, ids, context, stride or context // 2, batch_size or WINDOWS, progress, desc
            )
        )
    return _check_finite(
        _evaluate_streams(model, ids, batch_size or STREAMS, seq_len, progress, desc)
    )


def _evaluate_streams(
    model: nn.Module, ids: torch.Tensor, batch_size: int, seq_len: int, progress: bool, desc: str
) -> tuple[float, int, int]:
    """A recurrent model over B contiguous streams, state carried (see evaluate_ids). Every
    stream but the first starts from the state the text before it leaves (WARM_UP tokens
    read, not scored), so the number hardly depends on B: many streams are only faster."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    x_all, y_all = ids[:-1].long(), ids[1:].long()
    m = x_all.numel()
    b = min(batch_size, max(1, m // seq_len))
    length = m // b
    # a word-level vocabulary: shorter windows, the same streams
    seq_len = max(1, min(seq_len, LOGITS // (b * model.config.vocab_size)))
    x_streams = x_all[: b * length].view(b, length)
    y_streams = y_all[: b * length].view(b, length)
    nll = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    state = _warm_state(model, x_all, b, min(length, seq_len), length, device)
    windows = range(0, length, seq_len)
    tuner = ThreadTuner(enabled=device.type == "cpu" and len(windows) > 20)
    with contextlib.closing(tuner):
        for i in progress_bar(windows, desc=desc, unit="win", enabled=progress, leave=False):
            started = time.perf_counter()
            x = x_streams[:, i : i + seq_len].to(device)
            y = y_streams[:, i : i + seq_len].to(device)
            logits, state = model(x, state)
            nll += F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum")
            correct += (logits.argmax(-1) == y).sum()
            tuner.record(time.perf_counter() - started)
    if b * length < m:  # the tail continues stream b-1, which ended right before it
        last = tuple(s[:, -1:].contiguous() for s in state)
        x = x_all[b * length :].unsqueeze(0).to(device)
        y = y_all[b * length :].unsqueeze(0).to(device)
        logits, _ = model(x, detach_state(last))
        nll += F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum")
        correct += (logits.argmax(-1) == y).sum()
    model.train(was_training)
    return float(nll), m, int(correct)


# Tokens of text a stream reads before its first scored token: enough for a recurrent state
# to forget where it started (on the 8-minute GRU 2x384, 128 warmed streams scored within
# 0.0003 bits of 16: bench/RESULTS.md, "Evaluation and sampling speed").
WARM_UP = 128


def _warm_state(
    model: nn.Module, x_all: torch.Tensor, b: int, window: int, length: int, device: torch.device
) -> tuple[torch.Tensor, ...] | None:
    """The starting state of the B streams: zeros for the first (the text's start), and for
    each other the state after the WARM_UP tokens that precede its start -- at most one
    window, so its logits stay within LOGITS too."""
    warm = min(WARM_UP, window, length)
    if b == 1 or warm == 0:
        return None
    starts = torch.arange(1, b) * length
    before = x_all[starts.unsqueeze(1) - warm + torch.arange(warm)].to(device)  # [B-1, warm]
    _, warmed = model(before)
    zero = model.init_state(1, device)
    return tuple(torch.cat([z, w], dim=1) for z, w in zip(zero, warmed, strict=True))


def _check_finite(result: tuple[float, int, int]) -> tuple[float, int, int]:
    """A NaN or infinite NLL is no measurement: refuse it instead of printing 'nan bits'."""
    if not math.isfinite(result[0]):
        raise broken_weights(f"the model's predictions (total NLL {result[0]})")
    return result


def evaluate_text(
    model: nn.Module,
    tokenizer: Tokenizer,
    text: str,
    batch_size: int | None = None,
    seq_len: int = 256,
    progress: bool = False,
    stride: int | None = None,
    dynamic: DynamicConfig | None = None,
) -> EvalResult:
    """Evaluate a model on a text; characters are counted in NFC, whatever the tokenizer.
    With `dynamic`, the model adapts to the text as it scores it (dynamic.py): a different
    measurement from the static one, reported apart from it."""
    ids = encode(tokenizer, text)
    if dynamic is not None:
        nll, tokens, correct = dynamic_evaluate_ids(model, ids, dynamic, progress)
    else:
        nll, tokens, correct = evaluate_ids(model, ids, batch_size, seq_len, progress, stride)
    # The first character is given as context, not predicted.
    chars = len(unicodedata.normalize("NFC", text)) - 1
    if chars < 1:
        raise NextcharError("the text is too short to evaluate: it needs at least 2 characters")
    unknown = tokenizer.count_unknown(text)
    return EvalResult(nll, tokens, chars, correct, unknown)
