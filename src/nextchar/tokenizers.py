"""Tokenizers: text <-> integer ids. One protocol that every tokenizer meets; the character
tokenizer lives here. Tokenizers know nothing about models or tensors beyond numpy id arrays.

Vocabularies are built in a fixed order (code point order for characters), so the same text
gives the same ids on every run and machine -- unlike the lab's `list(set(sentence))`, whose
order changes with Python's hash seed.
"""

from __future__ import annotations

import codecs
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from nextchar.errors import NextcharError

Normalization = Literal["nfc", "nfd", "none"]
NORMALIZATIONS: tuple[str, ...] = ("nfc", "nfd", "none")

# The unknown-character symbol is U+FFFD REPLACEMENT CHARACTER: it is what Unicode itself uses
# for "a character that could not be represented", and because it is one character, decoding
# needs no special case.
UNK = "\ufffd"


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
    def __init__(self, tokenizer: CharTokenizer) -> None:
        self.tokenizer = tokenizer

    def feed(self, token_id: int) -> str:
        return self.tokenizer.vocab[token_id]

    def flush(self) -> str:
        return ""


class _Recomposing:
    """NFD ids: hold back the last composed character, since a following jamo or combining
    mark may still join it (ᄒ, then ᅡ, then ᆫ -> 한)."""

    def __init__(self, tokenizer: CharTokenizer) -> None:
        self.tokenizer = tokenizer
        self.pending = ""

    def feed(self, token_id: int) -> str:
        composed = unicodedata.normalize("NFC", self.pending + self.tokenizer.vocab[token_id])
        self.pending = unicodedata.normalize("NFD", composed[-1])
        return composed[:-1]

    def flush(self) -> str:
        out, self.pending = unicodedata.normalize("NFC", self.pending), ""
        return out


def _describe(chars: Sequence[str], limit: int = 8) -> str:
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
        chars = np.unique(_code_points(normalised))
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
        """Ids as an int64 array; vectorised, so encoding a whole corpus is one pass in C."""
        cps = _code_points(self.normalize(text))
        # The vocabulary is sorted by code point, so a binary search finds each id.
        pos = np.searchsorted(self._code_points, cps)
        pos_clipped = np.minimum(pos, len(self._code_points) - 1)
        known = self._code_points[pos_clipped] == cps
        if not known.all():
            if not self.unk:
                missing = sorted({chr(int(c)) for c in cps[~known]})
                raise NextcharError(
                    f"{len(missing)} character(s) not in the vocabulary: {_describe(missing)}; "
                    "build the tokenizer with unk=True (--unk) to map them to U+FFFD, "
                    "or train on text that contains them"
                )
            pos_clipped = np.where(known, pos_clipped, self._stoi[UNK])
        return pos_clipped.astype(np.int64)

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
        cps = _code_points(self.normalize(text))
        return int((~np.isin(cps, self._code_points)).sum())

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
        return np.frombuffer(data, dtype=np.uint8).astype(np.int64)

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


# ----------------------------------------------------------------------------- words

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
            raise NextcharError(f"--min-freq must be >= 1, got {min_freq}")
        if max_vocab is not None and max_vocab < 2:
            raise NextcharError(f"--max-vocab must be >= 2 (<unk> and one word), got {max_vocab}")
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
                f"the training text{seen}; lower --min-freq or give more text"
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


# ----------------------------------------------------------------------------- byte-level BPE


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
    try:
        import tokenizers
    except ImportError:
        raise NextcharError(
            'BPE tokenizers need the HuggingFace tokenizers package: pip install "nextchar[gpt2]"'
        ) from None
    return tokenizers


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
            raise NextcharError(f"--vocab-size must be >= 257 (256 bytes + 1), got {vocab_size}")
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
    if kind == "char":
        return CharTokenizer.build(text + held_out, normalization, unk)
    if kind == "byte":
        return ByteTokenizer(normalization)
    if kind == "word":
        return WordTokenizer.build(text, min_freq, max_vocab, word_split, lowercase)
    if kind == "bpe":
        return BPETokenizer.train(text, bpe_vocab)
    raise NextcharError(f"unknown tokenizer {kind!r}; choose char, byte, word or bpe")


def tokenizer_from_dict(data: dict[str, Any]) -> Tokenizer:
    """Rebuild any tokenizer from its `to_dict()`; the one place that branches on its type.
    The description comes from a file a user may have edited: any way it can be wrong is one
    NextcharError."""
    if not isinstance(data, dict):
        raise NextcharError("the saved tokenizer description is not a JSON object")
    kind = data.get("type")
    try:
        if kind == "char":
            return CharTokenizer.from_dict(data)
        if kind == "byte":
            return ByteTokenizer(data.get("normalization", "nfc"))
        if kind == "word":
            return WordTokenizer.from_dict(data)
        if kind == "bpe":
            return BPETokenizer.from_json(json.dumps(data["tokenizer"]))
    except NextcharError:
        raise
    except Exception as exc:  # TypeError, KeyError, the tokenizers library's own errors ...
        first = str(exc).splitlines()[0][:100] if str(exc) else ""
        raise NextcharError(
            f"the saved {kind} tokenizer is damaged ({type(exc).__name__}: {first})"
        ) from None
    raise NextcharError(f"unknown tokenizer type {kind!r} in the saved description")


# ----------------------------------------------------------------------------- report


@dataclass(frozen=True)
class TokenReport:
    """How a tokenizer cuts one text: the numbers behind "is this tokenizer a fit?"."""

    vocab_size: int
    unit: str
    chars: int  # NFC characters of the text
    tokens: int
    distinct: int  # vocabulary entries the text uses
    unknown: int  # units mapped to the unknown symbol
    partial: int  # tokens that are pieces of a character (byte fallback)
    most_frequent: list[tuple[str, int]]
    longest: list[str]

    @property
    def tokens_per_char(self) -> float:
        return self.tokens / max(1, self.chars)

    def warnings(self) -> list[str]:
        """Plain-language reasons this tokenizer may be a poor fit for the text."""
        out = []
        if self.tokens_per_char > 1.0:
            out.append(
                f"{self.tokens_per_char:.2f} tokens per character: this tokenizer cuts the "
                "text's characters into pieces (as GPT-2's English BPE does with Hangul); "
                "each character costs several predictions"
            )
        if self.tokens and self.partial / self.tokens > 0.2:
            out.append(
                f"{self.partial / self.tokens:.0%} of the tokens are pieces of a character "
                "(byte fallback): the vocabulary has few merges for this text"
            )
        if self.tokens and self.unknown / self.tokens > 0.01:
            out.append(
                f"{self.unknown / self.tokens:.1%} of the {self.unit}s are outside the "
                "vocabulary and are all read as one unknown symbol"
            )
        return out


def token_report(tokenizer: Tokenizer, text: str, top: int = 10) -> TokenReport:
    """Count how `tokenizer` cuts `text`."""
    ids = tokenizer.encode_array(text)
    counts = np.bincount(ids, minlength=tokenizer.vocab_size) if ids.size else np.zeros(1)
    used = np.flatnonzero(counts)
    is_partial = getattr(tokenizer, "is_partial", None)
    partial_ids = {int(i) for i in used if is_partial is not None and is_partial(int(i))}
    order = sorted(used.tolist(), key=lambda i: (-int(counts[i]), i))
    whole = [int(i) for i in used if int(i) not in partial_ids]
    longest = sorted(whole, key=lambda i: (-len(tokenizer.token_text(i)), i))[:top]
    return TokenReport(
        vocab_size=tokenizer.vocab_size,
        unit=tokenizer.unit,
        chars=len(unicodedata.normalize("NFC", text)),
        tokens=int(ids.size),
        distinct=int(used.size),
        unknown=tokenizer.count_unknown(text),
        partial=int(sum(int(counts[i]) for i in partial_ids)),
        most_frequent=[(tokenizer.token_text(i), int(counts[i])) for i in order[:top]],
        longest=[tokenizer.token_text(i) for i in longest],
    )
