"""Text in, id tensors out: read files, split train/validation, encode once into a flat tensor,
and cut [B, T] batches from it. Knows tokenizers by their protocol only; nothing about models.
"""

from __future__ import annotations

import contextlib
import hashlib
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from nextchar.core.config import TrainConfig
from nextchar.core.errors import NextcharError
from nextchar.core.options import flag
from nextchar.text.corpora import builtin_text, names_hint, parse_name
from nextchar.text.tokenizers import Tokenizer, build_tokenizer
from nextchar.text.tokenizers.base import ENCODE_BLOCK


def _sources(paths: Sequence[str | Path]) -> list[Path | str]:
    """Files to read, in order: each path as it is, every file under a directory (sorted,
    hidden ones left out), and for a name that is no path, a built-in corpus's name (kept as
    a string). A local file or directory wins over a built-in name."""
    sources: list[Path | str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            inside = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not inside:
                raise NextcharError(f"directory {path} holds no files to read")
            sources.extend(inside)
        elif path.is_file():
            sources.append(path)
        elif not path.exists() and parse_name(str(raw)) is not None:
            sources.append(str(raw))
        elif path.exists():  # a pipe, a socket, a device (/dev/zero never ends)
            raise NextcharError(
                f"{path} is not a regular file (a pipe or a device); give a text file"
            )
        else:
            raise NextcharError(f"no such file or directory: {path} ({names_hint()})")
    return sources


def text_bytes(paths: Sequence[str | Path]) -> int:
    """Bytes on disk of the files `read_text(paths)` reads (built-in corpora count 0)."""
    total = 0
    for source in _sources(paths):
        if isinstance(source, Path):
            with contextlib.suppress(OSError):
                total += source.stat().st_size
    return total


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:120]


def read_text(
    paths: str | Path | Sequence[str | Path], encoding: str = "utf-8", errors: str = "strict"
) -> str:
    """Read one or more files, or every file under a directory (sorted), or built-in corpora
    by name (`shakespeare`, `korean:val`), as one string.

    Invalid bytes raise an error naming the file and byte offset, unless errors="replace".
    Built-in corpora are UTF-8 whatever `encoding` says.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    parts = []
    for source in _sources(paths):
        if isinstance(source, str):
            parts.append(builtin_text(source) or "")
            continue
        raw = source.read_bytes()
        try:
            parts.append(raw.decode(encoding, errors))
        except UnicodeDecodeError as exc:
            raise NextcharError(
                f"{source}: byte {exc.start} ({raw[exc.start : exc.start + 1]!r}) is not valid "
                f"{encoding}; pass {flag('encoding')} to name the file's encoding, or "
                f"{flag('errors', 'replace')} "
                "to read it with U+FFFD in place of bad bytes"
            ) from None
        except UnicodeError as exc:  # a codec that cannot decode at all (undefined, punycode)
            raise NextcharError(
                f"{source} cannot be read as {encoding} ({_first_line(exc)}); pass "
                f"{flag('encoding')} to name the file's encoding"
            ) from None
        except LookupError:
            raise NextcharError(f"unknown text encoding {encoding!r}") from None
    return "\n".join(parts) if len(parts) > 1 else parts[0]


def split_text(text: str, val_fraction: float) -> tuple[str, str]:
    """Contiguous split: the last `val_fraction` of the text is validation (no shuffling, so
    validation text is never seen, not even as overlapping windows)."""
    cut = int(len(text) * (1.0 - val_fraction))
    return text[:cut], text[cut:]


def smallest_dtype(vocab_size: int) -> torch.dtype:
    """The narrowest integer dtype that holds every id: a 4 MB corpus stays 4 MB in memory."""
    if vocab_size <= 256:
        return torch.uint8
    if vocab_size <= 2**15:
        return torch.int16
    return torch.int32


def encode(tokenizer: Tokenizer, text: str) -> torch.Tensor:
    """Encode once into a flat 1-D tensor of the smallest fitting dtype."""
    ids = torch.from_numpy(tokenizer.encode_array(text))
    return ids.to(smallest_dtype(tokenizer.vocab_size))


# Contiguous streams for truncated back-propagation through time (word_language_model's
# batchify). The flat text a b c d ... x y z with B = 4 becomes four streams, one per row:
#
#   ┌ a g m s ┐   row b holds text[b*L : (b+1)*L]; window i is columns [i*T, (i+1)*T]
#   │ b h n t │   (plus one more column for the targets), so row b of window i+1 continues
#   │ c i o u │   exactly where row b of window i stopped: the hidden state carried from
#   │ d j p v │   one window to the next sees an unbroken text.
#   │ e k q w │
#   └ f l r x ┘   (shown transposed: each column here is a row of the [B, L] tensor)


def batchify(data: torch.Tensor, batch_size: int) -> torch.Tensor:
    """[N] -> [B, N // B]: B contiguous streams; the remainder (< B ids) is dropped."""
    length = data.numel() // batch_size
    return data[: length * batch_size].view(batch_size, length)


@dataclass(frozen=True)
class Batches:
    """Deterministic batches by step number, so resuming at step k needs no iterator state.

    mode "streams": window k % n_windows of the B streams; the caller carries the hidden
    state between windows and resets it when `starts_epoch(k)`.
    mode "random": B windows at random offsets drawn from a generator seeded by (seed, k).

    `rows` picks one process's share of every global batch (training over several processes):
    the same windows are cut, and each process keeps its rows of them.
    """

    data: torch.Tensor  # [N] flat ids
    batch_size: int  # the global batch
    seq_len: int
    mode: str = "streams"
    seed: int = 0
    rows: slice = field(default_factory=lambda: slice(None))

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.seq_len < 1:
            raise NextcharError("batch size and sequence length must be >= 1")
        need = self.batch_size * (self.seq_len + 1) if self.mode == "streams" else self.seq_len + 1
        if self.data.numel() < need:
            raise NextcharError(
                f"the training text has {self.data.numel()} tokens, too few for batches of "
                f"{self.batch_size} x {self.seq_len} (needs at least {need}); use a smaller "
                f"{flag('batch_size')} / {flag('seq_len')} or more text"
            )

    @property
    def streams(self) -> torch.Tensor:
        """This process's rows of the B streams: [B (or its share), N // B]."""
        return batchify(self.data, self.batch_size)[self.rows]

    @property
    def windows_per_epoch(self) -> int:
        if self.mode == "random":
            return max(1, self.data.numel() // (self.batch_size * self.seq_len))
        return (self.data.numel() // self.batch_size - 1) // self.seq_len

    def starts_epoch(self, step: int) -> bool:
        return step % self.windows_per_epoch == 0

    def get(
        self, step: int, streams: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y), both [B, T] int64 (this process's rows); y is x shifted by one position."""
        if self.mode == "random":
            # kept within the generator's 64 bits for any 63-bit seed (unchanged below ~1e13)
            g = torch.Generator().manual_seed((self.seed * 1_000_003 + step) % 2**64)
            starts = torch.randint(
                0, self.data.numel() - self.seq_len, (self.batch_size,), generator=g
            )[self.rows]
            rows = torch.stack([self.data[s : s + self.seq_len + 1] for s in starts.tolist()])
        else:
            streams = self.streams if streams is None else streams
            i = (step % self.windows_per_epoch) * self.seq_len
            rows = streams[:, i : i + self.seq_len + 1]
        rows = rows.long()
        return rows[:, :-1], rows[:, 1:]


@dataclass
class Corpus:
    tokenizer: Tokenizer
    train_ids: torch.Tensor  # [N] flat ids, smallest dtype
    val_ids: torch.Tensor
    train_chars: int  # NFC characters of the training text (for characters/s)
    val_chars: int  # NFC characters of the validation text (for bits per character)
    fingerprint: str  # sha256 of train + validation text: resuming on other data is refused


def load_corpus(config: TrainConfig, tokenizer: Tokenizer | None = None) -> Corpus:
    """Read, split, build the tokenizer (unless given) and encode both parts once."""
    if not config.files:
        raise NextcharError("no training text: give one or more files or directories")
    text = read_text(config.files, config.encoding, config.errors)
    if not text.strip():
        raise NextcharError(f"the training text in {', '.join(config.files)} is empty")
    length = len(text)
    if config.val_file is not None:
        train_text, val_text = text, read_text(config.val_file, config.encoding, config.errors)
    else:
        train_text, val_text = split_text(text, config.val_fraction)
    del text  # split, the whole would be a third copy of a large text
    if not train_text.strip():  # a text of a few characters: the validation cut took it all
        raise NextcharError(
            f"the training text in {', '.join(config.files)} has {length} character(s): "
            f"too few to hold out {flag('val_fraction')} {config.val_fraction:g} for "
            f"validation; give more text, or a {flag('val_file')}"
        )
    if tokenizer is None:
        tokenizer = build_tokenizer(
            config.tokenizer,
            train_text,
            config.normalization,  # type: ignore[arg-type]
            config.unk,
            config.min_freq,
            config.max_vocab,
            config.word_split,
            config.lowercase,
            config.bpe_vocab,
            held_out=val_text,
        )
        if tokenizer.vocab_size < 2:
            raise NextcharError(
                "the training text has a single distinct character: there is nothing to learn"
            )
    try:
        val_ids = encode(tokenizer, val_text)
    except NextcharError as exc:
        raise NextcharError(f"validation text: {exc}") from None
    if val_ids.numel() < 2:
        raise NextcharError(
            "the validation text is shorter than 2 tokens; give a longer "
            f"{flag('val_file')} or a larger {flag('val_fraction')}"
        )
    return Corpus(
        tokenizer,
        encode(tokenizer, train_text),
        val_ids,
        len(unicodedata.normalize("NFC", train_text)),
        len(unicodedata.normalize("NFC", val_text)),
        _fingerprint(train_text, val_text),
    )


def _fingerprint(train_text: str, val_text: str) -> str:
    digest = hashlib.sha256()
    for part in (train_text, "\0", val_text):
        for start in range(0, len(part), ENCODE_BLOCK):  # no UTF-8 copy of the whole text
            digest.update(part[start : start + ENCODE_BLOCK].encode("utf-8", "surrogatepass"))
    return digest.hexdigest()
