"""Sampling that keeps a byte-level model's text valid UTF-8.

A byte or byte-level BPE model predicts bytes, and a weakly trained one often continues a
multi-byte character with a byte that cannot follow -- printed, that is U+FFFD (the '���정'
of a small GPT-2). A stream decoder can only hold an incomplete character back, not mend an
invalid one. So the sampler asks this guard, before each token, which tokens keep the bytes
so far a valid UTF-8 prefix, and samples among those only.

The state is what the next byte must be: anything (a character just ended), or the next
continuation byte of a character, within the range UTF-8 allows there (after E0 only A0-BF,
after ED only 80-9F: no overlong forms, no surrogates; after F0 90-BF, after F4 80-8F).
Every token's effect from every state is computed once per vocabulary.
"""

from __future__ import annotations

import functools

import torch

# (continuation bytes still needed, lowest and highest value the next byte may take)
State = tuple[int, int, int]
FREE: State = (0, 0, 0)
_CONT = (0x80, 0xBF)
_LEADS = {0xE0: (2, 0xA0, 0xBF), 0xED: (2, 0x80, 0x9F), 0xF0: (3, 0x90, 0xBF),
          0xF4: (3, 0x80, 0x8F)}  # fmt: skip


def step(state: State, byte: int) -> State | None:
    """The state after `byte`, or None if UTF-8 cannot go on with it."""
    need, low, high = state
    if need:
        if not low <= byte <= high:
            return None
        return (need - 1, *_CONT) if need > 1 else FREE
    if byte < 0x80:
        return FREE
    if byte in _LEADS:
        return _LEADS[byte]
    if 0xC2 <= byte <= 0xDF:
        return (1, *_CONT)
    if 0xE1 <= byte <= 0xEF:
        return (2, *_CONT)
    if 0xF1 <= byte <= 0xF3:
        return (3, *_CONT)
    return None  # a stray continuation byte, C0, C1, F5-FF


STATES: tuple[State, ...] = (FREE, *{(n, *_CONT) for n in (1, 2, 3)}, *_LEADS.values())


class Utf8Guard:
    """Which tokens may come next: `allowed()` is a bool mask over the vocabulary; `feed`
    moves the state on by the token sampled."""

    def __init__(self, pieces: tuple[bytes, ...], state: State = FREE) -> None:
        self.allowed_by, self.after = _table(pieces)
        self.state = state

    def allowed(self) -> torch.Tensor:
        return self.allowed_by[self.state]

    def unfinished(self) -> bool:
        """Whether the bytes so far end inside a character."""
        return self.state != FREE

    def feed(self, token_id: int) -> None:
        self.state = self.after[self.state][token_id] or FREE


@functools.lru_cache(maxsize=4)
def _table(pieces: tuple[bytes, ...]) -> tuple[dict, dict]:
    allowed, after = {}, {}
    for start in STATES:
        ends: list[State | None] = []
        for piece in pieces:
            state: State | None = start
            for byte in piece:
                state = step(state, byte)
                if state is None:
                    break
            # an empty piece (an unused id) never comes next
            ends.append(state if piece else None)
        after[start] = ends
        allowed[start] = torch.tensor([end is not None for end in ends])
    return allowed, after


def guard_for(tokenizer: object, prime_ids: list[int]) -> Utf8Guard | None:
    """A guard for a byte-level tokenizer (one that says its tokens' bytes), in the state its
    prime leaves; None for the others, whose every token is whole text."""
    pieces = getattr(tokenizer, "byte_pieces", None)
    if pieces is None:
        return None
    guard = Utf8Guard(pieces())
    for token_id in prime_ids:
        state = guard.after[guard.state][token_id]
        guard.state = state if state is not None else FREE
    return guard
