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


@pytest.mark.parametrize(
    "sizes",
    [
        {"cell": "gru", "num_layers": 2},
        {"cell": "lstm", "num_layers": 2},
        {"cell": "rnn", "num_layers": 1, "nonlinearity": "relu"},
        {"cell": "rnn", "num_layers": 2},
        {"cell": "gru", "num_layers": 1, "input": "onehot"},
        {"cell": "lstm", "num_layers": 1, "tie_weights": True, "embedding_dim": 24},
    ],
)
def test_the_adapting_forward_has_the_modules_outputs_and_gradients(sizes) -> None:
    """models/adapt.py unrolls the fused cells with a cheaper backward: the same logits, the
    same state and, once finish() runs, the same gradient for every weight as autograd
    through the module -- from a zero state and from a carried one."""
    torch.manual_seed(0)
    m = build_model(model_config(vocab_size=12, hidden_size=24, **sizes)).eval()
    ids = torch.randint(0, 12, (1, 9), generator=torch.Generator().manual_seed(2))
    targets = torch.randint(0, 12, (9,), generator=torch.Generator().manual_seed(3))
    for state in (None, tuple(s.normal_() for s in m.init_state(1))):
        grads = []
        for forward in ("module", "adapting"):
            m.zero_grad(set_to_none=True)
            if forward == "module":
                logits, new = m(ids, state)
                finish = None
            else:
                logits, new, finish = m.adapting_forward(ids, state)
            torch.nn.functional.cross_entropy(logits[0], targets).backward()
            if finish is not None:
                finish()
            grads.append(([p.grad.clone() for p in m.parameters()], logits.detach(), new))
        (ga, la, sa), (gb, lb, sb) = grads
        assert torch.allclose(la, lb, atol=1e-6)
        assert all(torch.allclose(x, y, atol=1e-6) for x, y in zip(sa, sb, strict=True))
        for x, y in zip(ga, gb, strict=True):
            assert torch.allclose(x, y, atol=1e-6), (x - y).abs().max()
