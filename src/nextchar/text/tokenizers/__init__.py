"""Tokenizers: text <-> integer ids. One protocol that every tokenizer meets (base.py);
characters and bytes (chars.py), words (words.py), byte-level BPE (bpe.py). `build_tokenizer`
and `tokenizer_from_dict` are the one place that picks a tokenizer by its kind. Tokenizers know
nothing about models or tensors beyond numpy id arrays.

Vocabularies are built in a fixed order (code point order for characters), so the same text
gives the same ids on every run and machine -- unlike the lab's `list(set(sentence))`, whose
order changes with Python's hash seed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from nextchar.core.errors import NextcharError
from nextchar.text.tokenizers.base import (
    NORMALIZATIONS,
    UNK,
    Normalization,
    StreamDecoder,
    Tokenizer,
    checked_ids,
    normalize_text,
)
from nextchar.text.tokenizers.bpe import BPETokenizer
from nextchar.text.tokenizers.chars import ByteTokenizer, CharTokenizer
from nextchar.text.tokenizers.report import TokenReport, token_report
from nextchar.text.tokenizers.words import WORD_UNK, WordTokenizer

__all__ = [
    "NORMALIZATIONS",
    "UNK",
    "WORD_UNK",
    "BPETokenizer",
    "ByteTokenizer",
    "CharTokenizer",
    "Normalization",
    "StreamDecoder",
    "TokenReport",
    "Tokenizer",
    "WordTokenizer",
    "build_tokenizer",
    "checked_ids",
    "normalize_text",
    "token_report",
    "tokenizer_from_dict",
]

# a saved description ("type" key) -> the tokenizer it rebuilds
_FROM_DICT: dict[str, Callable[[dict[str, Any]], Tokenizer]] = {
    "char": CharTokenizer.from_dict,
    "byte": lambda data: ByteTokenizer(data.get("normalization", "nfc")),
    "word": WordTokenizer.from_dict,
    "bpe": lambda data: BPETokenizer.from_json(json.dumps(data["tokenizer"])),
}


def build_tokenizer(
    kind: str,
    text: str,
    normalization: Normalization = "nfc",
    unk: bool = False,
    min_freq: int = 1,
    max_vocab: int | None = None,
    word_split: str = "unicode",
    lowercase: bool = False,
    bpe_vocab: int = 1024,
    held_out: str = "",
) -> Tokenizer:
    """A tokenizer of `kind` ("char", "byte", "word" or "bpe") fitted to `text`; min_freq,
    max_vocab, word_split and lowercase apply to words, bpe_vocab to BPE.

    `held_out` is the validation text. A character vocabulary covers it too (as char-rnn and
    nanoGPT build theirs from all the text): a '「' that occurs only in the last tenth of a
    file is still a character of the language, not an error. Word and BPE vocabularies are
    learned from `text` alone; their <unk> and byte pieces already cover the rest."""
    builders: dict[str, Callable[[], Tokenizer]] = {
        "char": lambda: CharTokenizer.build(text + held_out, normalization, unk),
        "byte": lambda: ByteTokenizer(normalization),
        "word": lambda: WordTokenizer.build(text, min_freq, max_vocab, word_split, lowercase),
        "bpe": lambda: BPETokenizer.train(text, bpe_vocab),
    }
    if kind not in builders:
        raise NextcharError(f"unknown tokenizer {kind!r}; choose {', '.join(builders)}")
    return builders[kind]()


def tokenizer_from_dict(data: dict[str, Any]) -> Tokenizer:
    """Rebuild any tokenizer from its `to_dict()`; the one place that branches on its type.
    The description comes from a file a user may have edited: any way it can be wrong is one
    NextcharError."""
    if not isinstance(data, dict):
        raise NextcharError("the saved tokenizer description is not a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in _FROM_DICT:
        raise NextcharError(f"unknown tokenizer type {kind!r} in the saved description")
    try:
        return _FROM_DICT[kind](data)
    except NextcharError:
        raise
    except Exception as exc:  # TypeError, KeyError, the tokenizers library's own errors ...
        first = str(exc).splitlines()[0][:100] if str(exc) else ""
        raise NextcharError(
            f"the saved {kind} tokenizer is damaged ({type(exc).__name__}: {first})"
        ) from None
