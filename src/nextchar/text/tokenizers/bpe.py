"""Byte-level BPE learned from the text with HuggingFace `tokenizers` (a core dependency),
or loaded with a pretrained GPT-2."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from nextchar.core.errors import NextcharError, optional
from nextchar.core.options import flag
from nextchar.text.tokenizers.base import (
    Normalization,
    StreamDecoder,
    checked_ids,
)


def _byte_level_alphabet() -> dict[str, int]:
    """GPT-2's byte-level BPE writes each byte as a printable character (printable Latin-1
    bytes as themselves, the rest shifted to U+0100 and up); this maps such a character back
    to its byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    chars, shift = {}, 0
    for byte in range(256):
        if byte in printable:
            chars[chr(byte)] = byte
        else:
            chars[chr(256 + shift)] = byte
            shift += 1
    return chars


_BYTE_OF = _byte_level_alphabet()


def _tokenizers_library() -> Any:
    return optional("tokenizers", "BPE tokenizers", "gpt2", "HuggingFace tokenizers")


# A newline between two non-space characters is a pre-tokenization boundary of GPT-2's
# byte-level pattern on both sides; a newline next to other whitespace is not (" \n" or
# "\n  " may be one pre-token), so only the first kind is a safe place to cut the text.
_SAFE_CUT = re.compile(r"(?<=\S\n)(?=\S)")


def _bpe_pieces(text: str) -> list[str]:
    return _SAFE_CUT.split(text) if text else [""]


class BPETokenizer:
    """Byte-level BPE (GPT-2's scheme) through HuggingFace `tokenizers`: every text encodes,
    nothing is unknown, and a token may be a piece of a character (GPT-2's English merges
    spend two or three tokens on one Hangul syllable). Ids decode through their exact bytes,
    so decode(encode(s)) == s."""

    unit = "token"

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.normalization: Normalization = "none"
        self.unk = False
        vocab = backend.get_vocab(with_added_tokens=True)
        size = max(vocab.values()) + 1
        added = {t.content for t in backend.get_added_tokens_decoder().values()}
        pieces: list[bytes] = [b""] * size
        for token, index in vocab.items():
            if token in added or any(c not in _BYTE_OF for c in token):
                pieces[index] = token.encode("utf-8")  # special tokens are literal text
            else:
                pieces[index] = bytes(_BYTE_OF[c] for c in token)
        self.pieces = pieces

    @classmethod
    def train(cls, text: str, vocab_size: int, min_frequency: int = 2) -> BPETokenizer:
        """A byte-level BPE vocabulary of `vocab_size` learned from `text` (256 bytes plus
        merges, plus GPT-2's <|endoftext|>)."""
        tk = _tokenizers_library()
        if vocab_size < 257:
            raise NextcharError(
                f"{flag('bpe_vocab')} must be >= 257 (256 bytes + 1), got {vocab_size}"
            )
        backend = tk.Tokenizer(tk.models.BPE())
        backend.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = tk.decoders.ByteLevel()
        trainer = tk.trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(),
            special_tokens=["<|endoftext|>"],
            show_progress=False,
        )
        backend.train_from_iterator(_bpe_pieces(text), trainer)
        return cls(backend)

    @classmethod
    def from_json(cls, data: str) -> BPETokenizer:
        return cls(_tokenizers_library().Tokenizer.from_str(data))

    @property
    def vocab_size(self) -> int:
        return len(self.pieces)

    def normalize(self, text: str) -> str:
        return text  # byte-level BPE reads the text as it is

    def encode_array(self, text: str) -> np.ndarray:
        # encode_batch runs the pieces in parallel in Rust; they are cut only where the
        # pre-tokenizer would cut anyway, so the ids equal encoding the text in one piece
        encodings = self.backend.encode_batch(_bpe_pieces(text), add_special_tokens=False)
        ids = [i for e in encodings for i in e.ids]
        return np.array(ids, dtype=np.int64)

    def encode(self, text: str) -> list[int]:
        return self.encode_array(text).tolist()

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        ids_list = checked_ids(ids, self.vocab_size).tolist()
        return b"".join(self.pieces[i] for i in ids_list).decode("utf-8", "replace")

    def token_text(self, token_id: int) -> str:
        """The token as text; a piece of a character shows its bytes (<0xEC><0x84>)."""
        piece = self.pieces[token_id]
        try:
            return piece.decode("utf-8")
        except UnicodeDecodeError:
            return "".join(f"<0x{b:02X}>" for b in piece)

    def is_partial(self, token_id: int) -> bool:
        """True when the token is not whole characters (a byte-fallback piece)."""
        try:
            self.pieces[token_id].decode("utf-8")
        except UnicodeDecodeError:
            return True
        return False

    def stream_decoder(self, context: Sequence[int] = ()) -> StreamDecoder:
        return _PieceStream(self.pieces)

    def byte_pieces(self) -> tuple[bytes, ...]:
        """Each id's bytes: sampling keeps them valid UTF-8 (utf8.py)."""
        return tuple(self.pieces)

    def count_unknown(self, text: str) -> int:
        return 0  # every byte has a token

    def to_dict(self) -> dict[str, Any]:
        return {"type": "bpe", "tokenizer": json.loads(self.backend.to_str())}

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size})"


class _PieceStream:
    """Token byte strings arriving one by one, shown only once their characters are whole."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def feed(self, token_id: int) -> str:
        return self.decoder.decode(self.pieces[token_id])

    def flush(self) -> str:
        return self.decoder.decode(b"", final=True)
