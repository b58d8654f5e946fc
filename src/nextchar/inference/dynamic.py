"""Dynamic evaluation (Krause et al., 2018, "Dynamic Evaluation of Neural Sequence Models"):
the model keeps learning from the text while it scores it.

The text is read once, in order, as one stream whose state is carried. Each segment of
`seq_len` tokens is first scored with the current weights -- that NLL is what is reported --
and only then is a gradient step taken on it; so a prediction depends only on the text before
it, never on what it predicts or anything after it. The step is Krause's RMS rule with decay
towards the trained weights theta_0:

    MS <- beta * MS + (1 - beta) * g^2        (mean squares of the gradients seen so far)
    theta <- theta - lr * g / (sqrt(MS) + eps) + decay * (theta_0 - theta)

One stream, not batched streams: a batch of B streams would adapt the weights on text that
comes later in the document before scoring earlier text. The model itself is left as it was
(the adaptation runs on a copy).
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nextchar.core.errors import NextcharError
from nextchar.core.options import flag
from nextchar.core.runtime import ThreadTuner
from nextchar.display.progress import progress as progress_bar
from nextchar.models import detach_state, model_device, require
from nextchar.models.contract import DYNAMIC_EVAL


@dataclass(frozen=True)
class DynamicConfig:
    # chosen on the first fifth of shakespeare:val with the 8-minute CPU default
    # (bench/RESULTS.md)
    seq_len: int = 50
    lr: float = 3e-4
    decay: float = 1e-3
    beta: float = 0.99
    eps: float = 1e-8

    def __post_init__(self) -> None:
        if self.seq_len < 1 or not self.lr > 0 or not 0 <= self.decay < 1:
            raise NextcharError("dynamic evaluation needs seq_len >= 1, lr > 0 and decay in [0, 1)")


def dynamic_evaluate_ids(
    model: nn.Module,
    ids: torch.Tensor,
    config: DynamicConfig | None = None,
    progress: bool = False,
) -> tuple[float, int, int]:
    """(total NLL in nats, predicted tokens, correct) for ids [N], predicting ids[1:] with
    the model adapting to the text as it goes (see the module)."""
    require(model, DYNAMIC_EVAL, f"dynamic evaluation ({flag('dynamic')})")
    if ids.numel() < 2:
        raise NextcharError("the text is too short to evaluate: it needs at least 2 tokens")
    config = config or DynamicConfig()
    nll, correct = 0.0, 0
    segments = range(0, ids.numel() - 1, config.seq_len)
    bar = progress_bar(total=len(segments), desc="dynamic eval", unit="seg", enabled=progress)
    # Batch 1, but a segment's forward and backward are thousands of matrix-vector products:
    # two threads ran them 1.75x faster on a quiet 2-core machine, and beside a busy program
    # the tuner falls back to one (bench/RESULTS.md, "Dynamic evaluation").
    tuner = ThreadTuner(enabled=model_device(model).type == "cpu" and len(segments) > 20)
    with contextlib.closing(tuner), bar:
        started = time.perf_counter()
        for segment_nll, segment_correct in segment_scores(model, ids, config):
            nll += segment_nll
            correct += segment_correct
            bar.update(1)
            now = time.perf_counter()
            tuner.record(now - started)
            started = now
    if not math.isfinite(nll):
        raise NextcharError(
            f"dynamic evaluation diverged (total NLL {nll}): give a lower {flag('dynamic_lr')}"
        )
    return nll, ids.numel() - 1, correct


def segment_scores(
    model: nn.Module, ids: torch.Tensor, config: DynamicConfig
) -> Iterator[tuple[float, int]]:
    """(NLL in nats, correct predictions) of each segment, scored before the step that
    learns from it; `model` itself is not changed."""
    adapted = copy.deepcopy(model).train(False)  # no dropout; gradients still flow
    params = [p for p in adapted.parameters() if p.requires_grad]
    start = [p.detach().clone() for p in params]
    squares = [torch.zeros_like(p) for p in params]
    ids = ids.long().to(params[0].device)
    state = None
    for begin in range(0, ids.numel() - 1, config.seq_len):
        y = ids[begin + 1 : begin + 1 + config.seq_len].unsqueeze(0)
        x = ids[begin : begin + y.shape[1]].unsqueeze(0)
        logits, state, finish = adapted.adapting_forward(x, state)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum")
        yield float(loss.detach()), int((logits.detach().argmax(-1) == y).sum())
        adapted.zero_grad(set_to_none=True)
        (loss / y.numel()).backward()
        finish()
        _rms_step(params, start, squares, config)
        state = detach_state(state)


@torch.no_grad()
def _rms_step(
    params: list[torch.Tensor],
    start: list[torch.Tensor],
    squares: list[torch.Tensor],
    config: DynamicConfig,
) -> None:
    """The RMS step with decay (see the module), over all weights at once (torch's _foreach
    kernels: one call per operation, not one per weight and operation)."""
    kept = [i for i, p in enumerate(params) if p.grad is not None]
    ps, grads = [params[i] for i in kept], [params[i].grad for i in kept]
    ms, p0 = [squares[i] for i in kept], [start[i] for i in kept]
    torch._foreach_mul_(ms, config.beta)
    torch._foreach_addcmul_(ms, grads, grads, value=1 - config.beta)
    denominators = torch._foreach_sqrt(ms)
    torch._foreach_add_(denominators, config.eps)
    torch._foreach_addcdiv_(ps, grads, denominators, value=-config.lr)
    torch._foreach_lerp_(ps, p0, config.decay)  # p + decay * (p0 - p)
