"""Generation: next-token distributions and sampling. The maths are pure functions over
logits and ids with an explicit torch.Generator; text appears only at the edges (prime in,
stream decoder out). The prime is run once; each new token costs one recurrent step.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from nextchar.core.commands import SampleConfig
from nextchar.core.errors import NextcharError, broken_weights
from nextchar.core.options import flag
from nextchar.core.runtime import ThreadTuner
from nextchar.display import htmlview
from nextchar.display.terminal import prediction_lines, shown
from nextchar.inference.evaluate import bits
from nextchar.models import State, model_device, require
from nextchar.models.contract import BEAM_SEARCH
from nextchar.text.tokenizers import Tokenizer
from nextchar.text.tokenizers.utf8 import Utf8Guard, guard_for


def filter_logits(
    logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """Keep the top-k tokens and/or the smallest set whose probability reaches top_p
    (nucleus); the rest get -inf. logits [..., V]."""
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        # drop a token when the tokens before it already reach top_p; the first always stays
        # (a top_p of 1e-300 is 0 in float32, and 0 >= 0 would drop every token)
        drop_sorted = (cumulative - sorted_logits.softmax(-1)) >= top_p
        drop_sorted[..., 0] = False
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def penalize_repetition(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """logits [1, V]; `seen` [V] bool marks the ids already in the text. Positive logits are
    divided by the penalty, negative ones multiplied: every seen token scores lower than it
    would (CTRL's rule, as in transformers)."""
    if penalty == 1.0:
        return logits
    penalized = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalized, logits)


def gumbel_noise(shape: tuple[int, ...], generator: torch.Generator | None = None) -> torch.Tensor:
    """-log(E), E ~ Exponential(1): argmax(log p + this) is a draw from p (the Gumbel-max
    trick). Drawn ahead in blocks, it makes a sampling step an add and an argmax."""
    return torch.empty(shape).exponential_(generator=generator).log_().neg_()


def sample_next(
    logits: torch.Tensor,
    config: SampleConfig,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """logits [B, V] -> next ids [B]. `noise` (shaped like logits) is gumbel_noise drawn
    ahead; without it, it is drawn here."""
    if config.greedy:
        return logits.argmax(-1)
    # Shifted so the best score is 0 before dividing: a tiny temperature (1e-300) then sends
    # the others to -inf, the argmax limit, instead of inf - inf = NaN. The floor keeps the
    # divisor a normal float32 number (1e-300 would round to 0).
    scores = logits.float()
    if config.temperature != 1.0:
        scores = scores - scores.max(-1, keepdim=True).values
        scores = scores / max(config.temperature, torch.finfo(torch.float32).tiny)
    scores = filter_logits(scores, config.top_k, config.top_p)
    if noise is None:
        noise = gumbel_noise(tuple(scores.shape), generator)
    return (scores + noise).argmax(-1)


@torch.no_grad()
def prime_state(model: nn.Module, prime_ids: list[int]) -> tuple[torch.Tensor, State]:
    """Run the prime once: (logits for the next token [1, V], state after the prime). A model
    with a bounded context (GPT-2) sees the prime's last `context_size` tokens."""
    if not prime_ids:
        raise NextcharError(
            f"the prime text is empty; give at least one character with {flag('prime')}"
        )
    model.eval()
    context = model.context_size
    if context is not None:
        prime_ids = prime_ids[-context:]
    ids = torch.tensor([prime_ids], device=model_device(model))
    logits, state = model(ids)
    if not bool(torch.isfinite(logits[:, -1]).all()):  # once per prime, not per token
        raise broken_weights("the model's scores")
    return logits[:, -1], state


def generate_ids(
    model: nn.Module,
    prime_ids: list[int],
    config: SampleConfig,
    generator: torch.Generator | None = None,
    guard: Utf8Guard | None = None,
) -> Iterator[int]:
    """Yield `config.length` new ids, one step each (state carried). A step is a few
    matrix-vector products: on a CPU it starts on one thread and times its steps for the
    fastest count (runtime.ThreadTuner) -- two threads nearly halve a step on a quiet machine
    and collapse beside a busy one. A model with a bounded context re-primes from its most
    recent half-context of tokens when the cache is full."""
    tokens = _generate(model, prime_ids, config, generator, guard)
    tuner = ThreadTuner(enabled=model_device(model).type == "cpu", per_step=True)
    while True:
        # per token, so a consumer paused between tokens keeps its own thread count
        with tuner.step():
            token = next(tokens, None)
        if token is None:
            return
        yield token


NOISE_BLOCK = 256  # sampling steps whose noise is drawn at once


@torch.inference_mode()  # torch's decorator re-enters the mode at each resumption
def _generate(
    model: nn.Module,
    prime_ids: list[int],
    config: SampleConfig,
    generator: torch.Generator | None,
    guard: Utf8Guard | None,
) -> Iterator[int]:
    logits, state = prime_state(model, prime_ids)
    step = model.stepper(state)
    context = model.context_size
    history = list(prime_ids[-context:]) if context is not None else []
    seen = None
    if config.repetition_penalty != 1.0:
        seen = torch.zeros(logits.shape[-1], dtype=torch.bool)
        seen[torch.tensor(prime_ids)] = True
    noise, index = torch.empty(0), 0
    # a byte-level text ends on a whole character: up to 3 bytes past the length, if need be
    while index < config.length or (guard is not None and guard.unfinished()):
        if not config.greedy and index < config.length and index % NOISE_BLOCK == 0:
            block = min(NOISE_BLOCK, config.length - index)
            noise = gumbel_noise((block, 1, logits.shape[-1]), generator)
        elif not config.greedy and index == config.length:  # the last character's end
            noise = gumbel_noise((4, 1, logits.shape[-1]), generator)
        # sample on the CPU with a CPU generator: the same seed gives the same text on any device
        scores = logits.float().cpu()
        if seen is not None:
            scores = penalize_repetition(scores, seen, config.repetition_penalty)
        if guard is not None:  # byte-level: only tokens that keep the text valid UTF-8
            allowed = guard.allowed()[: scores.shape[-1]]
            if allowed.numel() < scores.shape[-1]:  # outputs no token stands for: never
                allowed = torch.cat(
                    [allowed, allowed.new_zeros(scores.shape[-1] - allowed.numel())]
                )
            scores = scores.masked_fill(~allowed, float("-inf"))
        if config.greedy:
            row = None
        else:
            row = noise[index % NOISE_BLOCK if index < config.length else index - config.length]
        next_id = int(sample_next(scores, config, noise=row))
        if guard is not None:
            guard.feed(next_id)
        if seen is not None:
            seen[next_id] = True
        yield next_id
        index += 1
        if index >= config.length and (guard is None or not guard.unfinished()):
            break  # no step for a token nobody will sample from
        if context is not None:
            history.append(next_id)
            if len(history) > context:
                history = history[-(context // 2) :]
                logits, state = prime_state(model, history)
                step = model.stepper(state)
                continue
        logits = step(next_id)


def sample_texts(
    model: nn.Module, tokenizer: Tokenizer, prime: str, config: SampleConfig
) -> Iterator[tuple[int, str]]:
    """Yield (sample index, text piece) as the text is made; pieces never split a character.
    Each sample starts with the prime; samples follow each other with one generator."""
    prime_ids = tokenizer.encode(prime)
    generator = torch.Generator().manual_seed(config.seed)
    if config.num_beams > 1:
        require(model, BEAM_SEARCH, f"{flag('num_beams')} (beam search)")
    for index in range(config.num_samples):
        decoder = tokenizer.stream_decoder(prime_ids)  # words: spaced after the prime
        if config.num_beams > 1:  # the whole beam is known only at the end
            new_ids = model.beam_search(prime_ids, config)
        else:
            guard = guard_for(tokenizer, prime_ids)
            new_ids = generate_ids(model, prime_ids, config, generator, guard)
        for token_id in new_ids:
            piece = decoder.feed(token_id)
            if piece:
                yield index, piece
        tail = decoder.flush()
        if tail:
            yield index, tail


def sample(
    model: nn.Module, tokenizer: Tokenizer, prime: str, config: SampleConfig | None = None
) -> list[str]:
    """The samples as strings, each without the prime."""
    config = config or SampleConfig()
    texts = [""] * config.num_samples
    for index, piece in sample_texts(model, tokenizer, prime, config):
        texts[index] += piece
    return texts


def default_prime(tokenizer: Tokenizer) -> str:
    """What sampling starts from when no prime is given: a newline starts a fresh line; a
    text without one gets the vocabulary's first symbol."""
    return "\n" if tokenizer.count_unknown("\n") == 0 else tokenizer.decode([0])


@dataclass(frozen=True)
class Prediction:
    """The next-token distribution after a text. Printed, the table of `nextchar predict`;
    in Jupyter, the same as bars."""

    candidates: list[tuple[str, float]]  # (token shown readably, probability), most likely first
    entropy_bits: float  # of the whole next-token distribution
    after: str = ""  # the text it follows
    vocab_size: int = 0
    unit: str = "token"
    unknown: int = 0  # units of `after` read as unknown

    def lines(self) -> list[str]:
        return prediction_lines(self)

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        head = self.lines()[: 2 if self.unknown else 1]
        shown_candidates = [(shown(token), p) for token, p in self.candidates]
        return htmlview.pre("\n".join(head)) + htmlview.bars(shown_candidates)


@torch.no_grad()
def predict_next(model: nn.Module, tokenizer: Tokenizer, text: str, k: int = 10) -> Prediction:
    """The k most likely next tokens after `text`, and the distribution's entropy in bits."""
    if k < 1:
        raise NextcharError(f"{flag('top_k')} must be >= 1, got {k}")
    logits, _ = prime_state(model, tokenizer.encode(text))
    log_probs = logits[0].float().log_softmax(-1)
    probs = log_probs.exp()
    entropy = bits(float(-(probs * log_probs).nan_to_num().sum()))
    top = torch.topk(probs, min(k, probs.numel()))
    candidates = [
        (tokenizer.token_text(int(i)), float(p))
        for p, i in zip(top.values, top.indices, strict=True)
    ]
    return Prediction(
        candidates,
        entropy,
        text,
        tokenizer.vocab_size,
        tokenizer.unit,
        tokenizer.count_unknown(text),
    )
