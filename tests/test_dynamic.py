"""Dynamic evaluation: scores each segment before learning from it, never changes the model,
helps on text that repeats itself, and is refused by models that cannot adapt."""

from __future__ import annotations

import pytest
import torch

from nextchar.core.config import model_config
from nextchar.core.errors import NextcharError
from nextchar.inference.dynamic import DynamicConfig, dynamic_evaluate_ids, segment_scores
from nextchar.inference.evaluate import evaluate_ids
from nextchar.models import build_model


def model(cell: str = "gru"):
    torch.manual_seed(0)
    return build_model(model_config(vocab_size=12, hidden_size=24, cell=cell))


def test_a_segment_is_scored_before_anything_after_it_is_seen() -> None:
    m, config = model(), DynamicConfig(seq_len=8, lr=1e-2)
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 12, (41,), generator=g)
    b = a.clone()
    b[20:] = torch.randint(0, 12, (21,), generator=g)  # differs from segment 2 (ids 16..24) on
    sa, sb = list(segment_scores(m, a, config)), list(segment_scores(m, b, config))
    assert sa[:2] == sb[:2]  # segments 0 and 1 predict ids 1..16: the same in both texts
    assert sa[2] != sb[2]
    # the first segment is scored by the trained weights, as static evaluation scores it
    static, _, _ = evaluate_ids(m, a[:9], batch_size=1, seq_len=8)
    assert sa[0][0] == pytest.approx(static, rel=1e-5)


def test_adapting_helps_on_repeated_text_and_leaves_the_model_alone() -> None:
    m = model("lstm")
    before = [p.detach().clone() for p in m.parameters()]
    phrase = torch.randint(0, 12, (30,), generator=torch.Generator().manual_seed(1))
    ids = phrase.repeat(20)
    static, tokens, _ = evaluate_ids(m, ids, batch_size=1, seq_len=50)
    adapted, dyn_tokens, _ = dynamic_evaluate_ids(m, ids, DynamicConfig(lr=3e-3))
    assert dyn_tokens == tokens == ids.numel() - 1
    assert adapted < 0.8 * static  # it learns the repeated phrase while reading
    assert all(torch.equal(p, q) for p, q in zip(before, m.parameters(), strict=True))


def test_a_diverging_step_size_is_an_error_not_nan() -> None:
    with pytest.raises(NextcharError, match="lower dynamic_lr"):
        dynamic_evaluate_ids(model(), torch.arange(200) % 12, DynamicConfig(lr=1e38, decay=0))


def test_bad_dynamic_settings() -> None:
    with pytest.raises(NextcharError, match="dynamic evaluation needs"):
        DynamicConfig(lr=0)
