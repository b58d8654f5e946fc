import itertools
import math
import unicodedata

import pytest
import torch
import torch.nn.functional as F

from nextchar import NextcharError
from nextchar.core.config import model_config
from nextchar.inference.evaluate import evaluate_text
from nextchar.models import build_model
from nextchar.text.tokenizers import ByteTokenizer, CharTokenizer

TEXT = "to be or not to be, that is the question.\n" * 3


def model_for(tokenizer, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(
        model_config(vocab_size=tokenizer.vocab_size, cell="gru", hidden_size=12)
    ).eval()


def hand_nll(model, ids: list[int]) -> float:
    """Token by token, the state carried, summing -log p(next)."""
    total, state = 0.0, None
    with torch.no_grad():
        for current, following in itertools.pairwise(ids):
            logits, state = model(torch.tensor([[current]]), state)
            total -= float(F.log_softmax(logits[0, -1].double(), -1)[following])
    return total


def test_bits_per_char_equals_a_hand_computation() -> None:
    tok = CharTokenizer.build(TEXT)
    model = model_for(tok)
    result = evaluate_text(model, tok, TEXT, batch_size=1, seq_len=7)
    expected = hand_nll(model, tok.encode(TEXT))
    assert result.nll == pytest.approx(expected, rel=1e-5)
    assert result.tokens == result.chars == len(TEXT) - 1
    assert result.bits_per_char == pytest.approx(expected / (len(TEXT) - 1) / math.log(2), rel=1e-5)
    assert result.perplexity == pytest.approx(math.exp(expected / (len(TEXT) - 1)), rel=1e-5)


def test_every_token_is_predicted_once_with_several_streams() -> None:
    tok = CharTokenizer.build(TEXT)
    model = model_for(tok)
    one = evaluate_text(model, tok, TEXT, batch_size=1, seq_len=8)
    many = evaluate_text(model, tok, TEXT, batch_size=3, seq_len=8)  # leaves a remainder
    assert many.tokens == one.tokens == len(TEXT) - 1
    # resets at 3 stream starts change the numbers only a little
    assert many.nll == pytest.approx(one.nll, rel=0.05)


def test_streams_start_from_the_text_before_them(monkeypatch) -> None:
    """Many streams score like one: each starts from the state its preceding text leaves
    (WARM_UP tokens read, not scored), not from zeros."""
    from nextchar.inference import evaluate

    text = "".join(TEXT[i % len(TEXT)] for i in range(0, 7 * 2000, 7))  # varied, 2000 chars
    tok = CharTokenizer.build(text)
    model = model_for(tok)
    one = evaluate_text(model, tok, text, batch_size=1, seq_len=32)
    warm = evaluate_text(model, tok, text, batch_size=8, seq_len=32)
    monkeypatch.setattr(evaluate, "WARM_UP", 0)
    cold = evaluate_text(model, tok, text, batch_size=8, seq_len=32)
    assert warm.tokens == cold.tokens == one.tokens
    assert abs(warm.nll - one.nll) < abs(cold.nll - one.nll) / 10


def test_a_large_vocabulary_scores_the_same_in_shorter_windows(monkeypatch) -> None:
    """The logits of one window are bounded (LOGITS): a word-sized vocabulary gets shorter
    windows, and the state carried across them gives the same number."""
    from nextchar.inference import evaluate

    tok = CharTokenizer.build(TEXT)
    model = model_for(tok)
    whole = evaluate_text(model, tok, TEXT, batch_size=1, seq_len=64)
    calls = []
    forward = model.forward
    monkeypatch.setattr(
        model, "forward", lambda ids, state=None: calls.append(ids.shape) or forward(ids, state)
    )
    monkeypatch.setattr(evaluate, "LOGITS", 8 * tok.vocab_size)  # one stream: windows of 8
    short = evaluate_text(model, tok, TEXT, batch_size=1, seq_len=64)
    assert max(shape[1] for shape in calls) == 8
    assert short.nll == pytest.approx(whole.nll, rel=1e-5) and short.tokens == whole.tokens
    calls.clear()  # several streams: their warm-up reads within the same bound
    monkeypatch.setattr(evaluate, "LOGITS", 2 * 8 * tok.vocab_size)
    evaluate_text(model, tok, TEXT, batch_size=2, seq_len=16)
    assert calls[0][0] == 1 and max(shape[1] for shape in calls) == 8


def test_bits_per_character_counts_characters_not_tokens() -> None:
    korean = "대한민국은 민주공화국이다. 대한민국의 주권은 국민에게 있다."
    nfd = CharTokenizer.build(korean, normalization="nfd")
    result = evaluate_text(model_for(nfd), nfd, korean)
    assert result.chars == len(unicodedata.normalize("NFC", korean)) - 1
    assert result.tokens == len(unicodedata.normalize("NFD", korean)) - 1 > result.chars
    assert result.bits_per_char == pytest.approx(result.nll / result.chars / math.log(2))
    byte = ByteTokenizer()
    by_bytes = evaluate_text(model_for(byte), byte, korean)
    assert by_bytes.chars == result.chars and by_bytes.tokens == len(korean.encode()) - 1


def test_unknown_characters_error_or_are_counted() -> None:
    tok = CharTokenizer.build(TEXT)
    with pytest.raises(NextcharError, match="'Q'"):
        evaluate_text(model_for(tok), tok, "to be. Q")
    with_unk = CharTokenizer.build(TEXT, unk=True)
    result = evaluate_text(model_for(with_unk), with_unk, "to be. QZ")
    assert result.unknown == 2


def test_too_short_text() -> None:
    tok = CharTokenizer.build(TEXT)
    with pytest.raises(NextcharError, match="too short"):
        evaluate_text(model_for(tok), tok, "t")
