"""Word level: WordTokenizer, word2vec / pretrained embeddings, neighbours, and word models
through the same training loop, checkpoints and evaluation as characters."""

import json
import math
import os
import random
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from nextchar import NextcharError
from nextchar.core.config import TrainConfig, model_config
from nextchar.inference.evaluate import evaluate_text
from nextchar.models import build_model
from nextchar.text.embeddings import init_embedding, load_vectors, nearest, train_word2vec
from nextchar.text.tokenizers import WordTokenizer, tokenizer_from_dict
from nextchar.training.loop import train

gensim = pytest.importorskip("gensim")

TEXT = (
    'The king said: "We go to London, and then to York."\n'
    "The queen (who knew) did not go; she stayed.\n"
    "서울은 대한민국의 수도이다. 부산은 항구 도시이다!\n"
)


def corpus(lines: int = 200) -> str:
    """Two kinds of sentence; cat/dog (and red/blue) are used in exactly the same contexts,
    so word2vec must put them together."""
    r = random.Random(0)
    rows = []
    for _ in range(lines):
        pet, verb, food = (
            r.choice(["cat", "dog"]),
            r.choice(["eats", "likes"]),
            r.choice(["fish", "meat", "milk"]),
        )
        colour, vehicle, move = (
            r.choice(["red", "blue"]),
            r.choice(["car", "bus"]),
            r.choice(["drives", "goes", "runs"]),
        )
        rows.append(f"the {pet} {verb} the {food} .")
        rows.append(f"a {colour} {vehicle} {move} fast .")
    return "\n".join(rows) + "\n"


# ----------------------------------------------------------------------------- tokenizer


def test_round_trip_of_normally_spaced_text() -> None:
    tok = WordTokenizer.build(TEXT)
    assert tok.decode(tok.encode(TEXT)) == TEXT
    assert tok.count_unknown(TEXT) == 0


def test_words_punctuation_korean_and_newlines_are_tokens() -> None:
    tok = WordTokenizer.build(TEXT)
    words = tok.split_words(TEXT)
    assert words[:4] == ["The", "king", "said", ":"]
    assert "서울은" in words and "대한민국의" in words  # an eojeol is one word
    assert words.count("\n") == 3
    assert tok.split_words("don't o'er") == ["don't", "o'er"]


def test_vocabulary_order_is_frequency_then_string_and_unk_is_id_0() -> None:
    tok = WordTokenizer.build("b a c a b a d\n")
    assert tok.vocab == ["<unk>", "a", "b", "\n", "c", "d"]  # a:3, b:2, then ties by string
    assert tok.encode("a b zebra") == [1, 2, 0]


def test_min_freq_and_max_vocab_send_words_to_unk_and_count_them() -> None:
    text = "a a a b b c d\n"
    tok = WordTokenizer.build(text, min_freq=2)
    assert tok.vocab == ["<unk>", "a", "b"]
    assert tok.encode(text) == [1, 1, 1, 2, 2, 0, 0, 0]
    assert tok.count_unknown(text) == 3  # c, d and the newline
    assert WordTokenizer.build(text, max_vocab=2).vocab == ["<unk>", "a"]


def test_empty_vocabulary_after_min_freq_is_an_error() -> None:
    with pytest.raises(NextcharError, match=r"vocabulary is empty.*occurs 1 time.*min_freq"):
        WordTokenizer.build("every word here is new\n", min_freq=2)


def test_whitespace_split_and_lowercase() -> None:
    tok = WordTokenizer.build("Hello, World!\nhello world", split="whitespace", lowercase=True)
    assert tok.split_words("Hello, World!\n") == ["hello,", "world!", "\n"]
    assert tok.token_id("HELLO,") == tok.token_id("hello,") is not None
    assert tok.decode(tok.encode("Hello, World!\nhello")) == "hello, world!\nhello"


def test_json_round_trip_keeps_ids() -> None:
    tok = WordTokenizer.build(TEXT, lowercase=True)
    again = tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())))
    assert isinstance(again, WordTokenizer)
    assert again.vocab == tok.vocab and again.lowercase
    assert again.encode(TEXT) == tok.encode(TEXT)


def test_stream_decoder_spaces_like_decode_and_after_a_prime() -> None:
    tok = WordTokenizer.build(TEXT)
    ids = tok.encode(TEXT)
    decoder = tok.stream_decoder()
    assert "".join(decoder.feed(i) for i in ids) == tok.decode(ids)
    after_prime = tok.stream_decoder(tok.encode("The king"))
    assert after_prime.feed(tok.token_id("said")) == " said"
    assert after_prime.feed(tok.token_id(":")) == ":"


# ----------------------------------------------------------------------------- embeddings


def small_model(tok: WordTokenizer, dim: int = 16, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(
        model_config(
            vocab_size=tok.vocab_size,
            cell="lstm",
            hidden_size=24,
            num_layers=1,
            embedding_dim=dim,
            **kw,
        )
    )


def test_word2vec_init_copies_vectors_row_for_row() -> None:
    text = corpus(40)
    tok = WordTokenizer.build(text)
    ids = torch.tensor(tok.encode(text))
    vectors = train_word2vec(ids, tok, dim=16, window=2, epochs=2)
    model = small_model(tok)
    report = init_embedding(model.embedding, tok, vectors, "test")
    assert report.missing == 1 and report.copied == tok.vocab_size - 1  # <unk> never occurs
    # one common factor brings the vectors to the embedding's N(0, 1) scale
    assert 2 < report.scale < 1000
    copied = torch.stack([model.embedding.weight[i] for i in range(1, tok.vocab_size)])
    assert float(copied.detach().std()) == pytest.approx(1.0, rel=0.15)
    for i, word in enumerate(tok.vocab):
        if word in vectors.key_to_index:
            expected = torch.tensor(vectors[word]) * report.scale
            assert torch.allclose(model.embedding.weight[i], expected, rtol=1e-6, atol=0)


@pytest.mark.slow
def test_word2vec_is_the_same_under_any_hash_seed() -> None:
    code = (
        "import torch, hashlib\n"
        "from nextchar.text.tokenizers import WordTokenizer\n"
        "from nextchar.text.embeddings import train_word2vec\n"
        "text = 'a b c a b d e a c\\n' * 30\n"
        "tok = WordTokenizer.build(text)\n"
        "kv = train_word2vec(torch.tensor(tok.encode(text)), tok, 8, epochs=1)\n"
        "print(hashlib.sha256(kv.vectors.tobytes()).hexdigest())\n"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(digests) == 1


@pytest.mark.parametrize("fmt", ["text", "binary", "glove", "keyedvectors"])
def test_load_vectors_in_every_format_gensim_writes(tmp_path, fmt: str) -> None:
    kv = gensim.models.KeyedVectors(vector_size=4)
    kv.add_vectors(["king", "queen", "서울"], [[1, 2, 3, 4], [1, 2, 3, 5], [-1, 0, 0.5, 2]])
    path = tmp_path / f"vectors.{fmt}"
    if fmt == "keyedvectors":
        kv.save(str(path))
    else:
        kv.save_word2vec_format(str(path), binary=fmt == "binary", write_header=fmt != "glove")
    loaded = load_vectors(path)
    assert loaded.vector_size == 4
    for word in ("king", "queen", "서울"):
        assert loaded[word].tolist() == pytest.approx(kv[word].tolist())


def test_vectors_of_another_dimension_are_refused(tmp_path) -> None:
    kv = gensim.models.KeyedVectors(vector_size=5)
    kv.add_vectors(["a"], [[1, 2, 3, 4, 5]])
    kv.save_word2vec_format(str(tmp_path / "v.txt"))
    tok = WordTokenizer.build("a b a b\n")
    with pytest.raises(NextcharError, match=r"5 dimensions.*embedding has 16.*embedding_dim=5"):
        init_embedding(small_model(tok).embedding, tok, load_vectors(tmp_path / "v.txt"), "v.txt")


def test_unreadable_vectors_file_is_one_clear_error(tmp_path) -> None:
    (tmp_path / "v.txt").write_text("2 3\nking 1 2\n")  # a row too short
    with pytest.raises(NextcharError, match="not a readable vectors file"):
        load_vectors(tmp_path / "v.txt")
    with pytest.raises(NextcharError, match="no vectors file"):
        load_vectors(tmp_path / "missing.txt")


def test_neighbours_are_by_cosine_similarity() -> None:
    tok = WordTokenizer(["north", "south", "cat", "dog"])
    model = small_model(tok, dim=2)
    with torch.no_grad():  # rows: <unk>, north, south, cat, dog
        model.embedding.weight.copy_(
            torch.tensor([[0.0, 1.0], [1.0, 0.0], [-1.0, 0.1], [3.0, 1.0], [6.0, 2.0]])
        )
    result = nearest(model, tok, "cat", k=4)
    names = [w for w, _ in result.neighbours]
    assert names == ["dog", "north", "<unk>", "south"]
    assert result.neighbours[0][1] == pytest.approx(1.0 - 1e-12, abs=1e-6)  # same direction
    assert result.neighbours[1][1] == pytest.approx(3 / math.sqrt(10))


def test_word2vec_puts_words_with_the_same_contexts_together() -> None:
    text = corpus(2000)  # gensim's frequent-word subsampling needs a few thousand lines
    tok = WordTokenizer.build(text)
    vectors = train_word2vec(torch.tensor(tok.encode(text)), tok, dim=16, window=1, epochs=5)
    model = small_model(tok)
    init_embedding(model.embedding, tok, vectors, "test")
    assert nearest(model, tok, "cat", k=1).neighbours[0][0] == "dog"
    assert nearest(model, tok, "red", k=1).neighbours[0][0] == "blue"


def test_neighbours_of_an_unknown_word_name_it_and_suggest() -> None:
    tok = WordTokenizer.build("king queen kingdom\n")
    with pytest.raises(NextcharError, match=r"'kingz' is not in the model's vocabulary.*king"):
        nearest(small_model(tok), tok, "kingz")
    with pytest.raises(NextcharError, match="2 tokens"):
        nearest(small_model(tok), tok, "king queen")


# ----------------------------------------------------------------------------- training


def tiny_train(tmp_path, **kw) -> TrainConfig:
    path = tmp_path / "train.txt"
    path.write_text(corpus(60))
    base = dict(
        files=(str(path),),
        tokenizer="word",
        min_freq=1,
        batch_size=4,
        seq_len=8,
        max_steps=12,
        eval_every=6,
        warmup_steps=0,
        lr=1e-2,
    )
    return TrainConfig(**{**base, **kw})


def test_frozen_embeddings_do_not_change_in_training(tmp_path) -> None:
    text = corpus(60)
    tok = WordTokenizer.build(text)
    words = [w for w in tok.vocab if w not in ("<unk>", "\n")]  # a file cannot hold "\n"
    kv = gensim.models.KeyedVectors(vector_size=8)
    kv.add_vectors(words, torch.randn(len(words), 8).numpy())
    kv.save_word2vec_format(str(tmp_path / "v.txt"))
    mc = model_config(cell="gru", hidden_size=16, num_layers=1, embedding_dim=8)
    config = tiny_train(tmp_path, embeddings=str(tmp_path / "v.txt"), freeze_embeddings=True)
    lines: list[str] = []
    train(mc, config, tmp_path / "run", progress=False, log=lines.append)
    assert "copied" in lines[0] and "2 not in the vectors" in lines[0]  # <unk> and "\n"

    from nextchar.models import load_checkpoint

    ckpt = load_checkpoint(tmp_path / "run" / "last", "cpu")
    model, tokenizer, scale = ckpt.model, ckpt.tokenizer, ckpt.meta["embeddings"]["scale"]
    for word in words:
        row = model.embedding.weight[tokenizer.token_id(word)]
        assert torch.allclose(row, torch.tensor(kv[word]) * scale, rtol=1e-6, atol=0)
    fresh = build_model(model.config)
    assert not torch.equal(model.head.weight, fresh.head.weight)  # the rest did train


def test_fine_tuned_embeddings_do_change(tmp_path) -> None:
    mc = model_config(cell="gru", hidden_size=16, num_layers=1, embedding_dim=8)
    config = tiny_train(tmp_path, embeddings="word2vec", w2v_epochs=1)
    train(mc, config, tmp_path / "run", progress=False)
    from nextchar.models import load_checkpoint

    ckpt = load_checkpoint(tmp_path / "run" / "last", "cpu")
    assert ckpt.meta["embeddings"]["copied"] == ckpt.tokenizer.vocab_size - 1
    tok = ckpt.tokenizer
    vectors = train_word2vec(
        torch.tensor(tok.encode(corpus(60)[: int(len(corpus(60)) * 0.9)])), tok, 8, epochs=1
    )
    row = torch.tensor(vectors[tok.vocab[1]])
    assert not torch.allclose(ckpt.model.embedding.weight[1], row)


def test_embedding_options_that_cannot_work_are_refused(tmp_path) -> None:
    mc = model_config(input="onehot", hidden_size=8, num_layers=1)
    with pytest.raises(NextcharError, match="one-hot input has no embedding"):
        train(mc, tiny_train(tmp_path, embeddings="word2vec"), tmp_path / "a", progress=False)
    tied = model_config(hidden_size=8, num_layers=1, embedding_dim=8, tie_weights=True)
    config = tiny_train(tmp_path, embeddings="word2vec", freeze_embeddings=True)
    with pytest.raises(NextcharError, match="freeze the output layer too"):
        train(tied, config, tmp_path / "b", progress=False)
    with pytest.raises(NextcharError, match="give embeddings"):
        TrainConfig(files=("x",), tokenizer="word", freeze_embeddings=True)
    with pytest.raises(NextcharError, match="word level only"):
        TrainConfig(files=("x",), max_vocab=100)


def test_word_model_bits_per_character_is_total_nll_over_characters(tmp_path) -> None:
    tok = WordTokenizer.build(TEXT)
    model = small_model(tok).eval()
    text = "The king said: we go to Paris.\n서울은 수도였다."
    result = evaluate_text(model, tok, text, batch_size=1, seq_len=1000)
    ids = torch.tensor([tok.encode(text)])
    with torch.no_grad():
        logits, _ = model(ids[:, :-1])
    nll = F.cross_entropy(logits[0], ids[0, 1:], reduction="sum").item()
    assert result.nll == pytest.approx(nll, rel=1e-5)
    assert result.tokens == ids.shape[1] - 1
    assert result.bits_per_char == pytest.approx(nll / (len(text) - 1) / math.log(2), rel=1e-5)
    assert result.perplexity == pytest.approx(math.exp(nll / result.tokens), rel=1e-5)
    assert result.unknown == 3  # we, Paris, 수도였다 are not in TEXT's vocabulary


# ----------------------------------------------------------------------------- CLI


def test_cli_word_model_train_predict_neighbors_sample_eval(tmp_path, cli) -> None:
    (tmp_path / "train.txt").write_text(corpus(300))
    small = ["--hidden-size", "16", "--num-layers", "1", "--emb-dim", "8", "--batch-size", "4"]
    budget = ["--seq-len", "8", "--max-steps", "20", "--eval-every", "10", "--quiet"]
    args = ["train", "train.txt", "--level", "word", "--embeddings", "word2vec", "--out", "run"]
    done = cli(*args, *small, *budget, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "embeddings: word2vec (skip-gram, 8-d" in done.stdout
    assert "perplexity" in done.stdout and "per word" in done.stdout

    predicted = cli("predict", "run", "the cat", "--top-k", "3", cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    assert "over 20 words" in predicted.stdout  # <unk>, "\n", "." and 17 words
    rows = predicted.stdout.splitlines()[1:]
    assert len(rows) == 3 and all("%" in row for row in rows)

    neighbours = cli("neighbors", "run", "cat", "--top-k", "4", cwd=tmp_path)
    assert neighbours.returncode == 0, neighbours.stderr
    assert len([r for r in neighbours.stdout.splitlines() if r.startswith("  ")]) == 4
    assert "cosine 0" in neighbours.stdout

    sampled = cli("sample", "run", "--prime", "the cat", "--length", "12", cwd=tmp_path)
    assert sampled.returncode == 0, sampled.stderr
    assert sampled.stdout.startswith("the cat ")  # the first word is spaced after the prime

    (tmp_path / "val.txt").write_text("the cat eats the zebra .\n")
    evaluated = cli("eval", "run", "val.txt", "--json", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    row = json.loads(evaluated.stdout)
    assert row["unit"] == "word" and row["unknown"] == 1 and row["tokens"] == 6
    assert row["bits_per_char"] == pytest.approx(row["nll_nats"] / row["chars"] / math.log(2))
    shown = cli("eval", "run", "val.txt", cwd=tmp_path)
    assert "per word" in shown.stdout and "1 of 7" in shown.stdout and "<unk>" in shown.stdout


def one_line_error(result) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_cli_bad_inputs_are_one_line_errors(tmp_path, cli) -> None:
    (tmp_path / "train.txt").write_text(corpus(100))
    kv = gensim.models.KeyedVectors(vector_size=5)
    kv.add_vectors(["cat", "dog"], [[1, 2, 3, 4, 5], [1, 2, 3, 4, 6]])
    kv.save_word2vec_format(str(tmp_path / "v5.bin"), binary=True)
    base = ["train", "train.txt", "--level", "word", "--max-steps", "2", "--quiet"]

    err = one_line_error(cli(*base, "--embeddings", "v5.bin", "--emb-dim", "8", cwd=tmp_path))
    assert "5 dimensions" in err and "--embedding-dim 5" in err
    err = one_line_error(cli(*base, "--min-freq", "100000", cwd=tmp_path))
    assert "vocabulary is empty" in err and "--min-freq" in err
    err = one_line_error(cli(*base, "--embeddings", "nope.txt", cwd=tmp_path))
    assert "no vectors file at nope.txt" in err
    err = one_line_error(cli(*base, "--level", "char", "--tokenizer", "word", cwd=tmp_path))
    assert "contradicts" in err

    small = ["--hidden-size", "8", "--num-layers", "1", "--emb-dim", "5", "--batch-size", "2"]
    ok = cli(*base, *small, "--embeddings", "v5.bin", "--out", "run", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "2 of" in ok.stdout  # cat and dog copied, the rest random
    err = one_line_error(cli("neighbors", "run", "cats", cwd=tmp_path))
    assert "'cats' is not in the model's vocabulary" in err and "cat" in err


def test_without_gensim_the_error_says_how_to_install(tmp_path, cli, monkeypatch) -> None:
    (tmp_path / "train.txt").write_text(corpus(50))
    monkeypatch.setitem(sys.modules, "gensim", None)  # `import gensim` now fails
    args = ["train", "train.txt", "--level", "word", "--embeddings", "word2vec", "--quiet",
            "--batch-size", "4", "--seq-len", "8"]  # fmt: skip
    err = one_line_error(cli(*args, "--max-steps", "2", cwd=tmp_path))
    assert "gensim" in err and 'pip install "nextchar[word2vec]"' in err
