"""Characters and bytes: one id per (normalised) character, or per UTF-8 byte."""

from __future__ import annotations

import codecs
import unicodedata
from collections.abc import Sequence
from typing import Any

import numpy as np

from nextchar.core.errors import NextcharError
from nextchar.core.options import flag
from nextchar.text.tokenizers.base import (
    UNK,
    Normalization,
    StreamDecoder,
    _check_normalization,
    _listed,
    _PassThrough,
    _Recomposing,
    checked_ids,
    code_point_blocks,
    id_dtype,
    normalize_text,
)


class CharTokenizer:
    """One id per character (code point) of the normalised text.

    normalization:
      "nfc"  (default) composed form: a Hangul syllable such as '한' is one character.
      "nfd"  decomposed form: Hangul syllables become jamo (ᄒ ᅡ ᆫ), accents become combining
             marks, so Korean needs dozens of symbols instead of thousands. Decoding
             recomposes (NFC), so decode(encode(s)) == NFC(s).
      "none" the text as given: decode(encode(s)) == s exactly.
    """

    def __init__(
        self, vocab: Sequence[str], normalization: Normalization = "nfc", unk: bool = False
    ) -> None:
        _check_normalization(normalization)
        if any(len(c) != 1 for c in vocab):
            raise NextcharError("a character vocabulary holds single characters only")
        vocab = sorted(set(vocab) | ({UNK} if unk else set()))
        if not vocab:
            raise NextcharError("cannot build a character vocabulary from empty text")
        self.vocab: list[str] = vocab
        self.normalization: Normalization = normalization
        self.unk = unk
        self._stoi = {c: i for i, c in enumerate(vocab)}
        self._code_points = np.array([ord(c) for c in vocab], dtype=np.uint32)  # sorted
        self._chars = np.array(vocab, dtype=object)  # "<U1" would drop "\x00"

    @classmethod
    def build(
        cls, text: str, normalization: Normalization = "nfc", unk: bool = False
    ) -> CharTokenizer:
        """Vocabulary = the distinct characters of `text` (after normalisation), by code point."""
        _check_normalization(normalization)
        normalised = normalize_text(text, normalization)
        blocks = [np.unique(cps) for _, cps in code_point_blocks(normalised)]
        chars = np.unique(np.concatenate(blocks)) if blocks else []
        return cls([chr(int(c)) for c in chars], normalization, unk)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def unit(self) -> str:
        # An NFD id is a jamo or a combining mark: '한' is three of them. Calling them
        # characters would label a per-jamo perplexity "per character".
        return "NFD symbol" if self.normalization == "nfd" else "character"

    def normalize(self, text: str) -> str:
        """The text as this tokenizer sees it (what the ids describe, character for character)."""
        return normalize_text(text, self.normalization)

    def encode_array(self, text: str) -> np.ndarray:
        """Ids in the narrowest integer type; vectorised (one pass in C) and in blocks, so a
        corpus of hundreds of megabytes needs no 4- or 8-byte-per-character temporaries."""
        normalised = self.normalize(text)
        ids = np.empty(len(normalised), dtype=id_dtype(self.vocab_size))
        for start, block in code_point_blocks(normalised):
            # The vocabulary is sorted by code point, so a binary search finds each id.
            pos = np.minimum(np.searchsorted(self._code_points, block), self.vocab_size - 1)
            known = self._code_points[pos] == block
            if not known.all():
                if not self.unk:
                    raise self._unknown(normalised)
                pos = np.where(known, pos, self._stoi[UNK])
            ids[start : start + block.size] = pos
        return ids

    def _unknown(self, normalised: str) -> NextcharError:
        unseen = set()
        for _, block in code_point_blocks(normalised):
            unseen.update(np.unique(block[~np.isin(block, self._code_points)]).tolist())
        missing = [chr(c) for c in sorted(unseen)]  # by code point
        return NextcharError(
            f"{len(missing)} character(s) not in the vocabulary: {_listed(missing)}; "
            f"build the tokenizer with unk=True ({flag('unk')}) to map them to U+FFFD, "
            "or train on text that contains them"
        )

    def encode(self, text: str) -> list[int]:
        return self.encode_array(text).tolist()

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        ids_array = checked_ids(ids, self.vocab_size)
        text = "".join(self._chars[ids_array].tolist())
        # NFD ids are jamo and combining marks; users read composed text.
        return unicodedata.normalize("NFC", text) if self.normalization == "nfd" else text

    def token_text(self, token_id: int) -> str:
        return self.vocab[token_id]

    def stream_decoder(self, context: Sequence[int] = ()) -> StreamDecoder:
        """`context` (the ids before the stream) does not change how characters print."""
        return _Recomposing(self) if self.normalization == "nfd" else _PassThrough(self)

    def count_unknown(self, text: str) -> int:
        """How many characters of `text` this vocabulary does not hold."""
        blocks = code_point_blocks(self.normalize(text))
        return sum(int((~np.isin(cps, self._code_points)).sum()) for _, cps in blocks)

    def to_dict(self) -> dict[str, Any]:
        # The U+FFFD entry is implied by unk=True, so it is not stored twice.
        vocab = [c for c in self.vocab if not (self.unk and c == UNK)]
        return {
            "type": "char",
            "normalization": self.normalization,
            "unk": self.unk,
            "vocab": vocab,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CharTokenizer:
        if data.get("type") != "char" or not isinstance(data.get("vocab"), list):
            raise NextcharError(
                "not a character tokenizer description (expected type 'char' and a vocab list)"
            )
        return cls(data["vocab"], data.get("normalization", "nfc"), bool(data.get("unk", False)))

    def __repr__(self) -> str:
        return (
            f"CharTokenizer(vocab_size={self.vocab_size}, "
            f"normalization={self.normalization!r}, unk={self.unk})"
        )


_BYTES = tuple(bytes([i]) for i in range(256))


class ByteTokenizer:
    """UTF-8 bytes, vocabulary 256 (like char-rnn): never an unknown symbol, any language.
    Decoding replaces incomplete or invalid byte sequences with U+FFFD, so a user never sees
    broken UTF-8; the stream decoder holds back a character until all its bytes are there."""

    vocab_size = 256
    unit = "byte"

    def __init__(self, normalization: Normalization = "nfc") -> None:
        _check_normalization(normalization)
        self.normalization: Normalization = normalization
        self.unk = False

    def normalize(self, text: str) -> str:
        return normalize_text(text, self.normalization)

    def encode_array(self, text: str) -> np.ndarray:
        data = self.normalize(text).encode("utf-8", "surrogatepass")
        return np.frombuffer(data, dtype=np.uint8).copy()  # writable, one byte an id

    def encode(self, text: str) -> list[int]:
        return list(self.normalize(text).encode("utf-8", "surrogatepass"))

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        ids_array = checked_ids(ids, 256)
        text = ids_array.astype(np.uint8).tobytes().decode("utf-8", "replace")
        return unicodedata.normalize("NFC", text) if self.normalization == "nfd" else text

    def token_text(self, token_id: int) -> str:
        char = bytes([token_id]).decode("latin-1")
        return char if token_id < 128 and char.isprintable() else f"<0x{token_id:02X}>"

    def is_partial(self, token_id: int) -> bool:
        """Bytes >= 0x80 are pieces of a multi-byte character."""
        return token_id >= 0x80

    def byte_pieces(self) -> tuple[bytes, ...]:
        """Each id's bytes: sampling keeps them valid UTF-8 (utf8.py)."""
        return _BYTES

    def stream_decoder(self, context: Sequence[int] = ()) -> StreamDecoder:
        return _Utf8Stream()

    def count_unknown(self, text: str) -> int:
        return 0

    def to_dict(self) -> dict[str, Any]:
        return {"type": "byte", "normalization": self.normalization}

    def __repr__(self) -> str:
        return f"ByteTokenizer(normalization={self.normalization!r})"


class _Utf8Stream:
    def __init__(self) -> None:
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def feed(self, token_id: int) -> str:
        return self.decoder.decode(bytes([token_id]))

    def flush(self) -> str:
        return self.decoder.decode(b"", final=True)
