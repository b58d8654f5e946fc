"""Word embeddings: train word2vec (gensim) on the training ids, load pretrained vectors, copy
them into an input embedding, and find a word's nearest neighbours by cosine similarity.

One-hot vectors carry no meaning -- every pair of distinct words is equally far apart (cosine
0) -- and need one input dimension per word. A dense embedding is a row per word in a small
space where words used alike end up close; word2vec learns such rows from co-occurrence alone,
so a language model can start from them instead of from noise.

gensim is an optional dependency (`pip install "nextchar[word2vec]"`), imported only here.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from nextchar.core.errors import NextcharError, optional
from nextchar.core.options import flag
from nextchar.text.tokenizers import Tokenizer

if TYPE_CHECKING:
    from gensim.models import KeyedVectors


def _gensim() -> Any:
    return optional("gensim", "word2vec", "word2vec")


def stable_hash(text: str) -> int:
    """gensim seeds each word's initial vector with hash(word + seed); Python's str hash
    changes with PYTHONHASHSEED, so the same seed would give other vectors in every process."""
    return zlib.crc32(text.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True)
class EmbeddingReport:
    """What initialising an embedding did, for the user and config.json."""

    source: str  # "word2vec (skip-gram, ...)" or the vectors file
    copied: int  # rows taken from the vectors
    missing: int  # rows left at their random initialisation
    missing_examples: tuple[str, ...]
    seconds: float
    scale: float = 1.0  # the one factor every copied vector was multiplied by

    def line(self) -> str:
        total = self.copied + self.missing
        shown = ", ".join(repr(w) for w in self.missing_examples)
        random_part = f"; {self.missing:,} not in the vectors keep a random row" + (
            f" (e.g. {shown})" if shown else ""
        )
        return (
            f"embeddings: {self.source}: {self.copied:,} of {total:,} rows copied "
            f"(scaled x{self.scale:.3g}){random_part if self.missing else ''} "
            f"({self.seconds:.1f} s)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "copied": self.copied,
            "missing": self.missing,
            "scale": self.scale,
            "seconds": round(self.seconds, 1),
        }


def _sentences(ids: torch.Tensor, tokenizer: Tokenizer, length: int = 1000) -> Iterator[list[str]]:
    # word2vec reads "sentences"; cutting the stream into fixed pieces keeps newline tokens
    # (which then get vectors too) and loses only the windows that straddle a cut.
    words = [tokenizer.token_text(i) for i in range(tokenizer.vocab_size)]
    flat = ids.tolist()
    for start in range(0, len(flat), length):
        yield [words[i] for i in flat[start : start + length]]


def train_word2vec(
    ids: torch.Tensor,
    tokenizer: Tokenizer,
    dim: int,
    algorithm: str = "skipgram",
    window: int = 5,
    epochs: int = 5,
    seed: int = 0,
) -> KeyedVectors:
    """Word2vec vectors for every token of the training ids (as the tokenizer spells them,
    <unk> included). One worker thread: gensim is only deterministic with one."""
    gensim = _gensim()
    model = gensim.models.Word2Vec(
        sentences=list(_sentences(ids, tokenizer)),
        vector_size=dim,
        window=window,
        min_count=1,  # the tokenizer already decided which words are in the vocabulary
        sg=1 if algorithm == "skipgram" else 0,
        epochs=epochs,
        seed=seed,
        workers=1,
        hashfxn=stable_hash,
    )
    return model.wv


def load_vectors(path: str | Path) -> KeyedVectors:
    """Pretrained vectors from a word2vec text or binary file, a GloVe text file (no header
    line) or a gensim KeyedVectors file (`kv.save(path)`), told apart by their content.
    gensim's own format is a Python pickle, which can run code when loaded: load only
    KeyedVectors files you trust (the word2vec and GloVe formats are plain data)."""
    gensim = _gensim()
    path = Path(path)
    if not path.is_file():
        raise NextcharError(
            f"no vectors file at {path}; give {flag('embeddings', 'word2vec')} to train them, "
            "or the path "
            "of a word2vec text/binary, GloVe or gensim KeyedVectors file"
        )
    KeyedVectors = gensim.models.KeyedVectors
    with path.open("rb") as f:
        head = f.read(4096)
    first_line = head.split(b"\n", 1)[0]
    attempts: list[tuple[str, Any]]
    if head.startswith(b"\x80"):  # a pickle: gensim's own KeyedVectors.save format
        attempts = [("gensim KeyedVectors", lambda: KeyedVectors.load(str(path)))]
    elif len(first_line.split()) == 2 and all(p.isdigit() for p in first_line.split()):
        attempts = [
            ("word2vec text", lambda: KeyedVectors.load_word2vec_format(str(path))),
            ("word2vec binary", lambda: KeyedVectors.load_word2vec_format(str(path), binary=True)),
        ]
    else:
        attempts = [
            ("GloVe text", lambda: KeyedVectors.load_word2vec_format(str(path), no_header=True))
        ]
    errors = []
    for name, attempt in attempts:
        try:
            vectors = attempt()
        except Exception as exc:  # gensim raises many kinds on a malformed file
            errors.append(f"{name}: {type(exc).__name__}: {str(exc)[:80]}")
            continue
        if not isinstance(vectors, KeyedVectors):
            errors.append(f"{name}: holds a {type(vectors).__name__}, not KeyedVectors")
            continue
        return vectors
    raise NextcharError(
        f"{path} is not a readable vectors file ({'; '.join(errors)}); expected word2vec "
        "text or binary, GloVe text, or a gensim KeyedVectors file"
    )


@dataclass(frozen=True)
class Rows:
    """Vectors for some rows of an embedding: `values[k]` belongs at row `ids[k]`."""

    ids: torch.Tensor  # [n] token ids that the vectors have
    values: torch.Tensor  # [n, dim]
    report: EmbeddingReport


def embedding_rows(
    tokenizer: Tokenizer,
    vectors: KeyedVectors,
    source: str,
    dim: int,
    init_std: float = 1.0,
    started: float | None = None,
) -> Rows:
    """Each vocabulary entry's vector, for the rows whose word the vectors have (lowercase is
    tried as a fallback, since many pretrained files are lowercased); the other rows keep their
    random initialisation. Copying them into a model is the caller's business.

    All vectors are multiplied by one factor that gives them the standard deviation of the
    embedding's own initialisation (`init_std`; N(0, 1) for nn.Embedding). word2vec's vectors
    are about 7x smaller than that: copied unscaled, they reach the recurrent layer as a faint
    input, and on Shakespeare the model then learned *slower* than from random rows
    (bench/RESULTS.md, "Word level"). One common factor changes no direction, so cosine
    neighbours are the same.
    """
    if vectors.vector_size != dim:
        raise NextcharError(
            f"the vectors ({source}) have {vectors.vector_size} dimensions but the model's "
            f"embedding has {dim}; pass {flag('embedding_dim', vectors.vector_size)}"
        )
    rows, found, missing = [], [], []
    for token_id in range(tokenizer.vocab_size):
        word = tokenizer.token_text(token_id)
        key = word if word in vectors.key_to_index else word.lower()
        if key in vectors.key_to_index:
            rows.append(token_id)
            found.append(vectors.key_to_index[key])
        else:
            missing.append(word)
    scale, table = 1.0, torch.zeros(0, dim)
    if rows:
        table = torch.from_numpy(np.asarray(vectors.vectors[found], dtype=np.float32))
        spread = float(table.std()) if table.numel() > 1 else 0.0
        scale = init_std / spread if spread > 0 else 1.0
    seconds = time.perf_counter() - started if started is not None else 0.0
    report = EmbeddingReport(source, len(rows), len(missing), tuple(missing[:5]), seconds, scale)
    return Rows(torch.tensor(rows, dtype=torch.long), table * scale, report)


@torch.no_grad()
def init_embedding(
    embedding: torch.nn.Embedding,
    tokenizer: Tokenizer,
    vectors: KeyedVectors,
    source: str,
    started: float | None = None,
) -> EmbeddingReport:
    """Copy the vectors into an embedding's rows (embedding_rows, scaled to its spread)."""
    weight = embedding.weight
    rows = embedding_rows(tokenizer, vectors, source, weight.shape[1], float(weight.std()), started)
    if rows.ids.numel():
        weight[rows.ids] = rows.values.to(weight)
    return rows.report


def vectors_from_config(embedding: torch.nn.Embedding, corpus: Any, config: Any) -> EmbeddingReport:
    """`embeddings='word2vec'` (trained on the training ids) or a vectors file, copied
    into the model's input embedding."""
    started = time.perf_counter()
    if config.embeddings == "word2vec":
        dim = embedding.weight.shape[1]
        vectors = train_word2vec(
            corpus.train_ids,
            corpus.tokenizer,
            dim,
            config.w2v_algorithm,
            config.w2v_window,
            config.w2v_epochs,
            config.seed,
        )
        algo = "skip-gram" if config.w2v_algorithm == "skipgram" else "CBOW"
        source = (
            f"word2vec ({algo}, {dim}-d, window {config.w2v_window}, "
            f"{config.w2v_epochs} epochs, training text)"
        )
    else:
        vectors = load_vectors(config.embeddings)
        source = str(config.embeddings)
    return init_embedding(embedding, corpus.tokenizer, vectors, source, started)


def _embedding(model: Any) -> torch.nn.Embedding:
    if model.embedding is None:
        raise NextcharError(
            "this model has one-hot input, which has no embedding: every pair of symbols is "
            f"equally far apart (cosine 0); train with {flag('input')} embedding"
        )
    return model.embedding


@dataclass(frozen=True)
class Neighbours:
    word: str
    neighbours: list[tuple[str, float]]  # (word, cosine similarity), most similar first


@torch.no_grad()
def nearest(model: Any, tokenizer: Tokenizer, word: str, k: int = 10) -> Neighbours:
    """The k vocabulary entries whose embedding rows have the highest cosine similarity to
    `word`'s row (the word itself left out)."""
    if k < 1:
        raise NextcharError(f"{flag('top_k')} must be >= 1, got {k}")
    ids = tokenizer.encode(word)
    if len(ids) != 1:
        raise NextcharError(
            f"{word!r} is {len(ids)} tokens for this model's tokenizer; give one {tokenizer.unit}"
        )
    token_id = ids[0]
    if tokenizer.count_unknown(word):
        known = [tokenizer.token_text(i) for i in range(tokenizer.vocab_size)]
        import difflib

        close = difflib.get_close_matches(tokenizer.normalize(word), known, n=3)
        hint = f"; close ones: {', '.join(close)}" if close else ""
        raise NextcharError(f"{word!r} is not in the model's vocabulary{hint}")
    weight = _embedding(model).weight.float()
    unit = torch.nn.functional.normalize(weight, dim=1)
    similarity = unit @ unit[token_id]
    similarity[token_id] = -float("inf")
    top = torch.topk(similarity, min(k, tokenizer.vocab_size - 1))
    pairs = [
        (tokenizer.token_text(int(i)), float(s))
        for s, i in zip(top.values, top.indices, strict=True)
    ]
    return Neighbours(tokenizer.token_text(token_id), pairs)
