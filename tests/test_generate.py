import pytest
import torch

from nextchar import NextcharError
from nextchar.core.commands import SampleConfig
from nextchar.core.config import model_config
from nextchar.inference.generate import (
    filter_logits,
    generate_ids,
    predict_next,
    sample,
    sample_next,
)
from nextchar.models import build_model
from nextchar.models.contract import forward_stepper
from nextchar.text.tokenizers import ByteTokenizer, CharTokenizer

PROBS = torch.tensor([0.5, 0.3, 0.15, 0.05])


def test_top_k_keeps_exactly_the_k_largest() -> None:
    kept = filter_logits(PROBS.log(), top_k=2)
    assert torch.isfinite(kept).tolist() == [True, True, False, False]


@pytest.mark.parametrize(
    ("top_p", "kept"), [(0.5, 1), (0.79, 2), (0.8, 2), (0.81, 3), (0.96, 4), (1.0, 4)]
)
def test_top_p_keeps_the_smallest_set_reaching_p(top_p: float, kept: int) -> None:
    shuffled = torch.tensor([2, 0, 3, 1])  # order must not matter
    out = filter_logits(PROBS.log()[shuffled], top_p=top_p)
    assert int(torch.isfinite(out).sum()) == kept
    assert torch.isfinite(out[1])  # the most likely token always stays


def frequencies(config: SampleConfig, n: int = 40_000) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    logits = PROBS.log().expand(n, 4)
    return torch.bincount(sample_next(logits, config, g), minlength=4) / n


def test_sampling_follows_the_distribution_and_temperature() -> None:
    torch.testing.assert_close(frequencies(SampleConfig()), PROBS, atol=0.01, rtol=0)
    sharp = PROBS**2 / (PROBS**2).sum()  # temperature 0.5 squares the probabilities
    torch.testing.assert_close(frequencies(SampleConfig(temperature=0.5)), sharp, atol=0.01, rtol=0)
    top2 = torch.tensor([0.5, 0.3, 0, 0]) / 0.8
    torch.testing.assert_close(frequencies(SampleConfig(top_k=2)), top2, atol=0.01, rtol=0)
    greedy = frequencies(SampleConfig(greedy=True), n=10)
    assert greedy.tolist() == [1.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": 0.0}, "temperature must be > 0"),
        ({"temperature": -1.0}, "temperature must be > 0"),
        ({"top_p": 0.0}, "top_p must be > 0"),
        ({"top_p": 1.5}, "top_p must be <= 1"),
        ({"top_k": 0}, "top_k must be >= 1"),
    ],
)
def test_bad_sampling_options(kwargs: dict, message: str) -> None:
    with pytest.raises(NextcharError, match=message):
        SampleConfig(**kwargs)


def tiny_model(tokenizer, cell: str = "lstm"):
    torch.manual_seed(0)
    return build_model(model_config(vocab_size=tokenizer.vocab_size, cell=cell, hidden_size=16))


def test_prime_runs_once_then_one_step_per_token() -> None:
    tok = CharTokenizer.build("abcdefgh")
    model = tiny_model(tok)
    lengths = []
    model.register_forward_pre_hook(lambda m, args: lengths.append(args[0].shape[1]))
    fed = []
    stepper = model.stepper
    model.stepper = lambda state: lambda t: fed.append(t) or stepper(state)(t)
    ids = list(generate_ids(model, tok.encode("abcab"), SampleConfig(length=6)))
    # the prime once through forward; then each new token but the last is fed by one step
    assert len(ids) == 6 and lengths == [5] and fed == ids[:5]


@pytest.mark.parametrize(
    "options",
    [
        {"cell": "lstm"},
        {"cell": "gru"},
        {"cell": "rnn"},
        {"cell": "rnn", "nonlinearity": "relu", "num_layers": 3},
        {"cell": "lstm", "input": "onehot", "num_layers": 1},
        {"cell": "gru", "bias": False, "tie_weights": True, "embedding_dim": 16},
        {"cell": "lstm", "proj_size": 8},  # through forward
        {"cell": "mingru"},  # through forward
    ],
)
def test_stepper_equals_forward_token_by_token(options: dict) -> None:
    torch.manual_seed(0)
    model = build_model(model_config(vocab_size=11, hidden_size=16, **options)).eval()
    ids = [3, 1, 4, 1, 5, 9, 2, 6]
    with torch.no_grad():
        _, state = model(torch.tensor([ids[:3]]))
        reference, _ = model(torch.tensor([ids[3:]]), state)
        step = model.stepper(state)
        stepped = torch.cat([step(t) for t in ids[3:]])
    torch.testing.assert_close(stepped, reference[0], atol=1e-5, rtol=1e-5)


def test_stepper_leaves_the_callers_state_alone() -> None:
    torch.manual_seed(0)
    model = build_model(model_config(vocab_size=11, hidden_size=16)).eval()
    with torch.no_grad():
        _, state = model(torch.tensor([[1, 2]]))
        before = [s.clone() for s in state]
        step = model.stepper(state)
        step(3), step(4)
    assert all(torch.equal(a, b) for a, b in zip(before, state, strict=True))


def test_same_seed_same_text_other_seed_other_text() -> None:
    tok = CharTokenizer.build("the quick brown fox jumps over the lazy dog")
    model = tiny_model(tok)
    a = sample(model, tok, "the", SampleConfig(length=40, seed=1, num_samples=2))
    b = sample(model, tok, "the", SampleConfig(length=40, seed=1, num_samples=2))
    c = sample(model, tok, "the", SampleConfig(length=40, seed=2, num_samples=2))
    assert a == b and a != c and a[0] != a[1] and len(a[0]) == 40


def test_byte_model_never_shows_broken_utf8() -> None:
    tok = ByteTokenizer()
    model = tiny_model(tok)
    texts = sample(model, tok, "한", SampleConfig(length=300, seed=0))
    texts[0].encode("utf-8")  # a str with lone surrogates would fail here
    stream = tok.stream_decoder()
    pieces = [stream.feed(b) for b in "한국".encode()]
    assert pieces == ["", "", "한", "", "", "국"]


def test_nfd_sampling_recomposes_syllables() -> None:
    tok = CharTokenizer.build("한국어 대한민국", normalization="nfd")
    model = tiny_model(tok)
    text = sample(model, tok, "한", SampleConfig(length=50, seed=0))[0]
    import unicodedata

    assert text == unicodedata.normalize("NFC", text)


def test_predict_next_is_a_distribution_with_entropy() -> None:
    tok = CharTokenizer.build("abcd")
    model = tiny_model(tok)
    p = predict_next(model, tok, "abc", k=4)
    assert sorted(t for t, _ in p.candidates) == ["a", "b", "c", "d"]
    assert abs(sum(q for _, q in p.candidates) - 1.0) < 1e-5
    probs = torch.tensor([q for _, q in p.candidates])
    assert p.entropy_bits == pytest.approx(float(-(probs * probs.log2()).sum()), abs=1e-4)
    assert [q for _, q in p.candidates] == sorted((q for _, q in p.candidates), reverse=True)
    with pytest.raises(NextcharError, match="not in the vocabulary"):
        predict_next(model, tok, "abz")


def test_repetition_penalty_lowers_only_seen_tokens() -> None:
    from nextchar.inference.generate import penalize_repetition

    logits = torch.tensor([[2.0, -1.0, 3.0, -0.5]])
    seen = torch.tensor([True, True, False, False])
    out = penalize_repetition(logits, seen, 2.0)
    assert out.tolist() == [[1.0, -2.0, 3.0, -0.5]]
    assert torch.equal(penalize_repetition(logits, seen, 1.0), logits)


class FixedScores(torch.nn.Module):
    """Always the same positive logits, 5 > 4 > ... > 1: greedy repeats token 0 forever."""

    context_size = None  # the part of the LanguageModel contract that sampling reads

    def __init__(self) -> None:
        super().__init__()
        self.scores = torch.nn.Parameter(torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0]))

    def forward(self, ids: torch.Tensor, state=None):
        return self.scores.expand(ids.shape[0], ids.shape[1], 5), None

    def stepper(self, state):
        return forward_stepper(self, state)


def test_repetition_penalty_covers_the_prime_and_every_generated_token() -> None:
    model = FixedScores()
    plain = list(generate_ids(model, [0], SampleConfig(length=4, greedy=True)))
    assert plain == [0, 0, 0, 0]
    config = SampleConfig(length=4, greedy=True, repetition_penalty=100.0)
    assert list(generate_ids(model, [0], config)) == [1, 2, 3, 4]


def test_beam_search_is_for_gpt2_only() -> None:
    tok = CharTokenizer.build("abc")
    with pytest.raises(NextcharError, match="num_beams needs a GPT-2"):
        sample(tiny_model(tok), tok, "a", SampleConfig(length=3, num_beams=2))


def test_prediction_bars_line_up_by_display_width_with_hangul() -> None:
    """A Hangul syllable takes two terminal columns: the bars start in one column whatever
    the tokens, and plurals read right."""
    from types import SimpleNamespace

    from nextchar.display.terminal import columns, plural, prediction_lines

    prediction = SimpleNamespace(
        unknown=0, after="서울은", entropy_bits=1.0, vocab_size=3, unit="character",
        candidates=[("대", 0.5), ("a", 0.3), ("\n", 0.2)],
    )  # fmt: skip
    rows = prediction_lines(prediction)[1:]
    starts = {columns(row[: row.index("%")]) for row in rows}
    assert len(starts) == 1, rows
    assert columns("서울") == 4 and columns("e\u0301") == 1
    assert (plural(1, "step"), plural(1000, "step")) == ("1 step", "1,000 steps")


@pytest.mark.parametrize("tokenizer", ["byte", "bpe"])
def test_byte_level_samples_are_valid_utf8_even_from_an_untrained_model(tokenizer) -> None:
    """An untrained byte-level model picks bytes at random, and most random bytes cannot
    follow the ones before them: sampling keeps only the tokens that leave valid UTF-8, so
    no U+FFFD reaches the text, and the bytes decode strictly."""
    from nextchar.text.tokenizers import BPETokenizer, ByteTokenizer
    from nextchar.text.tokenizers.utf8 import guard_for

    text = "대한민국은 민주공화국이다. Seoul is the capital. " * 20
    tok = ByteTokenizer() if tokenizer == "byte" else BPETokenizer.train(text, 300)
    torch.manual_seed(0)
    model = build_model(model_config(vocab_size=tok.vocab_size, hidden_size=16, embedding_dim=8))
    config = SampleConfig(length=400, seed=3, temperature=1.5)
    sampled = sample(model, tok, "대한", config)[0]
    assert "\ufffd" not in sampled
    ids = list(generate_ids(model, tok.encode("대한"), config, torch.Generator().manual_seed(3),
                            guard_for(tok, tok.encode("대한"))))  # fmt: skip
    pieces = tok.byte_pieces()
    b"".join(pieces[i] for i in tok.encode("대한") + ids).decode("utf-8")  # strict: no error
    unguarded = list(
        generate_ids(model, tok.encode("대한"), config, torch.Generator().manual_seed(3))
    )
    raw = b"".join(pieces[i] for i in unguarded)
    assert "\ufffd" in raw.decode("utf-8", "replace")  # without the guard, it would show
