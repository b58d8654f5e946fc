"""The Tokenizer protocol every tokenizer meets, the stream decoders that turn ids back into
text as they are made, and the helpers the tokenizers share."""

from __future__ import annotations

import typing
import unicodedata
from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from nextchar.core.config import Normalization
from nextchar.core.errors import NextcharError

NORMALIZATIONS: tuple[str, ...] = typing.get_args(Normalization)

# The unknown-character symbol is U+FFFD REPLACEMENT CHARACTER: it is what Unicode itself uses
# for "a character that could not be represented", and because it is one character, decoding
# needs no special case.
UNK = "\ufffd"
ENCODE_BLOCK = 1 << 22  # characters encoded at a time: temporaries stay tens of megabytes


def id_dtype(vocab_size: int) -> np.dtype:
    """The narrowest integer type that holds every id: a 200 MB corpus of characters takes
    200 MB of ids, not 1.6 GB."""
    if vocab_size <= 256:
        return np.dtype(np.uint8)
    return np.dtype(np.int16) if vocab_size <= 2**15 else np.dtype(np.int32)


@runtime_checkable
class Tokenizer(Protocol):
    """What every tokenizer offers; models and training only ever see the ids."""

    @property
    def vocab_size(self) -> int: ...

    # what one id stands for, for labels such as "perplexity per word":
    # character | NFD symbol | byte | word | token
    unit: str

    def normalize(self, text: str) -> str: ...

    def encode(self, text: str) -> list[int]: ...

    def encode_array(self, text: str) -> np.ndarray: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def token_text(self, token_id: int) -> str: ...

    def count_unknown(self, text: str) -> int: ...

    def stream_decoder(self, context: Sequence[int] = ()) -> StreamDecoder: ...

    def to_dict(self) -> dict[str, Any]: ...


class StreamDecoder(Protocol):
    """Turns ids arriving one by one into text that never shows a half character."""

    def feed(self, token_id: int) -> str: ...

    def flush(self) -> str: ...


class _PassThrough:
    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer

    def feed(self, token_id: int) -> str:
        return self.tokenizer.vocab[token_id]

    def flush(self) -> str:
        return ""


class _Recomposing:
    """NFD ids: hold back the last composed character, since a following jamo or combining
    mark may still join it (ᄒ, then ᅡ, then ᆫ -> 한)."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.pending = ""

    def feed(self, token_id: int) -> str:
        composed = unicodedata.normalize("NFC", self.pending + self.tokenizer.vocab[token_id])
        self.pending = unicodedata.normalize("NFD", composed[-1])
        return composed[:-1]

    def flush(self) -> str:
        out, self.pending = unicodedata.normalize("NFC", self.pending), ""
        return out


def _listed(chars: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in chars[:limit])
    more = f" and {len(chars) - limit} more" if len(chars) > limit else ""
    return shown + more


def _check_normalization(normalization: str) -> None:
    if normalization not in NORMALIZATIONS:
        raise NextcharError(
            f"unknown normalization {normalization!r}; choose one of {', '.join(NORMALIZATIONS)}"
        )


def normalize_text(text: str, normalization: str) -> str:
    """The text in the given Unicode normal form ("none": unchanged)."""
    if normalization == "none":
        return text
    return unicodedata.normalize(normalization.upper(), text)


def checked_ids(ids: Sequence[int] | np.ndarray, vocab_size: int) -> np.ndarray:
    """The ids as an int64 array, or one clear error if any is outside 0..vocab_size-1."""
    array = np.asarray(ids, dtype=np.int64)
    if array.size and (array.min() < 0 or array.max() >= vocab_size):
        raise NextcharError(f"token id out of range 0..{vocab_size - 1}")
    return array


def _code_points(text: str) -> np.ndarray:
    # UTF-32 turns a str into one uint32 per code point without a Python-level loop.
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")


def code_point_blocks(text: str) -> Iterator[tuple[int, np.ndarray]]:
    """(offset, code points) of consecutive blocks of `text`: a text of hundreds of megabytes
    never exists as 4 bytes per character, only one block of it at a time."""
    for start in range(0, len(text), ENCODE_BLOCK):
        yield start, _code_points(text[start : start + ENCODE_BLOCK])
