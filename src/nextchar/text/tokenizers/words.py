"""Words: one id per word seen often enough in the training text, the rest share <unk>."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from nextchar.core.errors import NextcharError
from nextchar.core.options import flag
from nextchar.text.tokenizers.base import (
    Normalization,
    StreamDecoder,
    checked_ids,
)

WORD_UNK = "<unk>"
WORD_SPLITS: tuple[str, ...] = ("unicode", "whitespace")
# "unicode": a word is a run of letters/digits (any script, so a Korean eojeol such as 서울은
# is one word) with inner apostrophes kept (don't, o'er); every other non-space character is a
# token of its own; a newline is a token. A literal "<unk>" (as in the Penn Treebank) is read
# as the unknown-word token.
_UNICODE_WORDS = re.compile(r"<unk>|\n|\w+(?:['’]\w+)*|[^\w\s]")
_WHITESPACE_WORDS = re.compile(r"\n|[^\s]+")


def _space_before(prev: str | None, token: str, quote_open: bool) -> bool:
    """Whether decode puts a space between `prev` and `token` (unicode split): none at line
    starts, before closing punctuation, after opening brackets, or around dashes."""
    if prev is None or prev == "\n" or token == "\n":
        return False
    if len(token) == 1 and not token.isalnum():
        if token == '"':
            return not quote_open  # an opening quote gets a space, a closing one does not
        if unicodedata.category(token) in ("Po", "Pe", "Pf", "Pd") and token not in "¿¡'":
            return False
    if len(prev) == 1 and not prev.isalnum():
        if prev == '"':
            return not quote_open  # after an opening quote (now open): no space
        if unicodedata.category(prev) in ("Ps", "Pi", "Pd") or prev in "¿¡'":
            return False
    return True


class _WordStream:
    """Words arriving one by one, spaced as decode() spaces them."""

    def __init__(self, tokenizer: WordTokenizer, context: Sequence[int]) -> None:
        self.tokenizer = tokenizer
        self.prev: str | None = None
        self.quote_open = False
        for token_id in context:  # learn the spacing state; print nothing
            self.feed(token_id)

    def feed(self, token_id: int) -> str:
        token = self.tokenizer.vocab[token_id]
        if self.tokenizer.split == "unicode":
            space = _space_before(self.prev, token, self.quote_open)
            if token == '"':
                self.quote_open = not self.quote_open
        else:
            space = self.prev not in (None, "\n") and token != "\n"
        self.prev = token
        return " " + token if space else token

    def flush(self) -> str:
        return ""


class WordTokenizer:
    """One id per word or punctuation mark; newline is a token, `<unk>` (id 0) stands for
    every word outside the vocabulary.

    The vocabulary holds the words seen at least `min_freq` times, at most `max_vocab` of them
    (counting `<unk>`), most frequent first, ties in string order, so it is the same on every
    machine. Decoding joins words with single spaces (none before closing punctuation), so
    decode(encode(s)) is `s` with its spacing normalised, not `s` itself.
    """

    unit = "word"

    def __init__(self, vocab: Sequence[str], split: str = "unicode", lowercase: bool = False):
        if split not in WORD_SPLITS:
            raise NextcharError(
                f"unknown word split {split!r}; choose one of {', '.join(WORD_SPLITS)}"
            )
        words = [w for w in vocab if w != WORD_UNK]
        if len(set(words)) != len(words) or any(not w for w in words):
            raise NextcharError("a word vocabulary holds distinct, non-empty words")
        self.vocab: list[str] = [WORD_UNK, *words]
        self.split = split
        self.lowercase = lowercase
        self.normalization: Normalization = "nfc"
        self.unk = True
        self._stoi = {w: i for i, w in enumerate(self.vocab)}
        self._pattern = _UNICODE_WORDS if split == "unicode" else _WHITESPACE_WORDS

    @classmethod
    def build(
        cls,
        text: str,
        min_freq: int = 1,
        max_vocab: int | None = None,
        split: str = "unicode",
        lowercase: bool = False,
    ) -> WordTokenizer:
        """The vocabulary of `text`: words seen >= min_freq times, the max_vocab most frequent."""
        if min_freq < 1:
            raise NextcharError(f"{flag('min_freq')} must be >= 1, got {min_freq}")
        if max_vocab is not None and max_vocab < 2:
            raise NextcharError(
                f"{flag('max_vocab')} must be >= 2 (<unk> and one word), got {max_vocab}"
            )
        tokenizer = cls([], split, lowercase)
        counts = Counter(tokenizer.split_words(text))
        counts.pop(WORD_UNK, None)
        kept = sorted(
            (w for w, n in counts.items() if n >= min_freq), key=lambda w: (-counts[w], w)
        )
        if max_vocab is not None:
            kept = kept[: max_vocab - 1]
        if not [w for w in kept if w != "\n"]:
            most = counts.most_common(1)
            seen = f"; the most frequent word occurs {most[0][1]} time(s)" if most else ""
            raise NextcharError(
                f"the word vocabulary is empty: no word occurs at least {min_freq} time(s) in "
                f"the training text{seen}; lower {flag('min_freq')} or give more text"
            )
        return cls(kept, split, lowercase)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def normalize(self, text: str) -> str:
        text = unicodedata.normalize("NFC", text)
        return text.lower() if self.lowercase else text

    def split_words(self, text: str) -> list[str]:
        """The text as word strings (before the vocabulary lookup)."""
        return self._pattern.findall(self.normalize(text))

    def encode_array(self, text: str) -> np.ndarray:
        get = self._stoi.get
        return np.array([get(w, 0) for w in self.split_words(text)], dtype=np.int64)

    def encode(self, text: str) -> list[int]:
        return self.encode_array(text).tolist()

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        ids_list = checked_ids(ids, self.vocab_size).tolist()
        stream = _WordStream(self, ())
        return "".join(stream.feed(i) for i in ids_list)

    def token_text(self, token_id: int) -> str:
        return self.vocab[token_id]

    def token_id(self, word: str) -> int | None:
        """The id of one word as this tokenizer reads it (case folded if lowercase), or None."""
        return self._stoi.get(self.normalize(word))

    def stream_decoder(self, context: Sequence[int] = ()) -> StreamDecoder:
        """`context`: the ids already shown (a prime), so the first word is spaced right."""
        return _WordStream(self, context)

    def count_unknown(self, text: str) -> int:
        """How many words of `text` are outside the vocabulary (read as <unk>)."""
        return sum(1 for w in self.split_words(text) if w not in self._stoi or w == WORD_UNK)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "word",
            "split": self.split,
            "lowercase": self.lowercase,
            "vocab": self.vocab[1:],  # <unk> is always id 0
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WordTokenizer:
        if data.get("type") != "word" or not isinstance(data.get("vocab"), list):
            raise NextcharError(
                "not a word tokenizer description (expected type 'word' and a vocab list)"
            )
        return cls(data["vocab"], data.get("split", "unicode"), bool(data.get("lowercase")))

    def __repr__(self) -> str:
        return (
            f"WordTokenizer(vocab_size={self.vocab_size}, split={self.split!r}, "
            f"lowercase={self.lowercase})"
        )
