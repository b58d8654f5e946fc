"""Evaluation: total negative log-likelihood of a text under a model, and the numbers derived
from it. Bits per character is the one number that compares models whatever their tokenizer:
total NLL in nats / number of characters / ln 2.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from nextchar.data import encode
from nextchar.errors import NextcharError
from nextchar.models import RecurrentLM, detach_state
from nextchar.tokenizers import Tokenizer


def bits(nats: float) -> float:
    """Nats to bits."""
    return nats / math.log(2)


@dataclass(frozen=True)
class EvalResult:
    nll: float  # total negative log-likelihood in nats over the predicted tokens
    tokens: int  # predicted tokens (every token but the first, which is given)
    chars: int  # characters (NFC code points) those tokens spell
    correct: int  # tokens whose argmax prediction was right
    unknown: int = 0  # characters mapped to U+FFFD (tokenizers built with unk)

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


@torch.no_grad()
def evaluate_ids(
    model: RecurrentLM,
    ids: torch.Tensor,
    batch_size: int = 16,
    seq_len: int = 256,
    progress: bool = False,
) -> tuple[float, int, int]:
    """(total NLL in nats, predicted tokens, correct) for ids [N], predicting ids[1:].

    The text is cut into B contiguous streams whose state is carried from window to window;
    the few ids left over continue the last stream's state, so every token is predicted and
    the state is reset only at the B stream starts.
    """
    if ids.numel() < 2:
        raise NextcharError("the text is too short to evaluate: it needs at least 2 tokens")
    was_training = model.training
    model.eval()
    device = model.head.weight.device
    x_all, y_all = ids[:-1].long(), ids[1:].long()
    m = x_all.numel()
    b = min(batch_size, max(1, m // seq_len))
    length = m // b
    x_streams = x_all[: b * length].view(b, length)
    y_streams = y_all[: b * length].view(b, length)
    nll = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    state = None
    windows = range(0, length, seq_len)
    for i in tqdm(windows, desc="eval", unit="win", disable=not progress, leave=False):
        x = x_streams[:, i : i + seq_len].to(device)
        y = y_streams[:, i : i + seq_len].to(device)
        logits, state = model(x, state)
        nll += F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum")
        correct += (logits.argmax(-1) == y).sum()
    if b * length < m:  # the tail continues stream b-1, which ended right before it
        last = (
            tuple(s[:, -1:].contiguous() for s in state)
            if isinstance(state, tuple)
            else state[:, -1:].contiguous()
        )
        x = x_all[b * length :].unsqueeze(0).to(device)
        y = y_all[b * length :].unsqueeze(0).to(device)
        logits, _ = model(x, detach_state(last))
        nll += F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum")
        correct += (logits.argmax(-1) == y).sum()
    model.train(was_training)
    return float(nll), m, int(correct)


def evaluate_text(
    model: RecurrentLM,
    tokenizer: Tokenizer,
    text: str,
    batch_size: int = 16,
    seq_len: int = 256,
    progress: bool = False,
) -> EvalResult:
    """Evaluate a model on a text; characters are counted in NFC, whatever the tokenizer."""
    ids = encode(tokenizer, text)
    nll, tokens, correct = evaluate_ids(model, ids, batch_size, seq_len, progress)
    # The first character is given as context, not predicted.
    chars = len(unicodedata.normalize("NFC", text)) - 1
    if chars < 1:
        raise NextcharError("the text is too short to evaluate: it needs at least 2 characters")
    unknown = tokenizer.count_unknown(text)
    return EvalResult(nll, tokens, chars, correct, unknown)
