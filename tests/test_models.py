import pytest
import torch

from nextchar import NextcharError
from nextchar.core.config import CELLS, ModelConfig, model_config, model_config_from_dict
from nextchar.models import build_model, detach_state

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def tiny(**overrides) -> ModelConfig:
    base = {
        "vocab_size": 8,
        "hidden_size": 8,
        "cell": "lstm",
        "num_layers": 1,
        "embedding_dim": None,
    }
    return model_config(**{**base, **overrides})


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_onehot_input_equals_embedding_lookup_with_the_same_weights(cell: str) -> None:
    """one_hot(x) @ W_ih^T is row x of W_ih^T: an embedding table holding W_ih^T, followed by
    an identity input weight, gives exactly the one-hot model's logits."""
    torch.manual_seed(0)
    onehot = build_model(tiny(cell=cell, input="onehot"))
    width = GATES[cell] * 8  # the input weight stacks one [H, .] block per gate
    emb = build_model(tiny(cell=cell, input="embedding", embedding_dim=width))
    state = {k: v for k, v in onehot.state_dict().items() if k != "rnn.weight_ih_l0"}
    emb.load_state_dict(state, strict=False)
    with torch.no_grad():
        emb.embedding.weight.copy_(onehot.rnn.weight_ih_l0.T)  # [V, gates*H]
        emb.rnn.weight_ih_l0.copy_(torch.eye(width))
    ids = torch.randint(0, 8, (3, 11))
    torch.testing.assert_close(emb(ids)[0], onehot(ids)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("input_kind", ["onehot", "embedding"])
def test_state_carried_across_calls_equals_one_long_call(cell: str, input_kind: str) -> None:
    torch.manual_seed(1)
    model = build_model(tiny(cell=cell, input=input_kind, num_layers=2)).eval()
    ids = torch.randint(0, 8, (2, 12))
    full, _ = model(ids)
    first, state = model(ids[:, :5])
    second, _ = model(ids[:, 5:], state)
    torch.testing.assert_close(torch.cat([first, second], dim=1), full)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_shapes_and_init_state(cell: str) -> None:
    model = build_model(tiny(cell=cell, num_layers=3, hidden_size=6))
    logits, state = model(torch.zeros(4, 7, dtype=torch.long))
    assert logits.shape == (4, 7, 8)
    zero = model.init_state(4)
    # the contract: a tuple named by state_names, batch on dim 1, shapes declared up front
    assert model.state_names == (("h", "c") if cell == "lstm" else ("h",))
    assert list(model.state_shapes(4).values()) == [(3, 4, 6)] * len(model.state_names)
    assert [s.shape for s in state] == [s.shape for s in zero] == [(3, 4, 6)] * len(state)
    # zeros are what torch assumes when no state is given
    torch.testing.assert_close(
        model(torch.ones(4, 7, dtype=torch.long), zero)[0],
        model(torch.ones(4, 7, dtype=torch.long))[0],
    )


def test_lstm_projection_changes_state_and_head_sizes() -> None:
    model = build_model(tiny(cell="lstm", hidden_size=8, proj_size=3))
    logits, (h, c) = model(torch.zeros(2, 5, dtype=torch.long))
    assert h.shape == (1, 2, 3) and c.shape == (1, 2, 8)
    assert logits.shape == (2, 5, 8) and model.head.in_features == 3
    assert model.init_state(2)[0].shape == (1, 2, 3)


def test_detach_state_cuts_the_graph() -> None:
    model = build_model(tiny(cell="lstm"))
    _, state = model(torch.zeros(1, 3, dtype=torch.long))
    assert all(s.requires_grad for s in state)
    assert not any(s.requires_grad for s in detach_state(state))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"bidirectional": True}, "no option bidirectional"),
        ({"hiden_size": 8}, r"no option hiden_size \(did you mean hidden_size\?\)"),
        ({"cell": "gru", "proj_size": 2}, "proj_size is an LSTM option"),
        ({"cell": "lstm", "proj_size": 8}, "proj_size must be in"),
        ({"cell": "lstm", "nonlinearity": "relu"}, "rnn cell only"),
        ({"cell": "transformer"}, "cell must be one of"),
        ({"hidden_size": 0}, "hidden_size must be >= 1"),
        ({"dropout": 1.0}, "dropout"),
        ({"vocab_size": 1}, "vocab_size must be >= 2"),
    ],
)
def test_bad_model_configs_are_refused_with_a_reason(overrides: dict, message: str) -> None:
    with pytest.raises(NextcharError, match=message):
        tiny(**overrides)


def test_config_json_round_trip_refuses_unknown_fields() -> None:
    config = tiny(cell="gru", num_layers=2, dropout=0.1)
    assert model_config_from_dict(config.to_dict()) == config
    with pytest.raises(NextcharError, match="unknown RecurrentConfig field"):
        model_config_from_dict({**config.to_dict(), "colour": "red"})


def _every_kind(tmp_path) -> list:
    """One small model of every kind nextchar runs: each recurrent cell, GPT-2, and an
    exported ONNX file."""
    from nextchar.models import load

    models = [build_model(tiny(cell=c, num_layers=2)) for c in CELLS]
    models.append(build_model(model_config(vocab_size=8, kind="gpt2", n_layer=1, n_head=1,
                                          n_embd=8, block_size=16)))  # fmt: skip
    pytest.importorskip("onnxruntime")
    from nextchar.inference.export import export_onnx
    from nextchar.models.checkpoint import save_checkpoint
    from nextchar.text.tokenizers import CharTokenizer

    tokenizer = CharTokenizer.build("abcdefgh")
    save_checkpoint(tmp_path / "ckpt", build_model(tiny(cell="lstm", num_layers=2)), tokenizer)
    models.append(load(export_onnx(tmp_path / "ckpt", tmp_path / "m.onnx"), "cpu")[0])
    return models


def test_every_model_kind_meets_the_contract(tmp_path) -> None:
    from nextchar.models import LanguageModel
    from nextchar.models.contract import CELL_VIEW

    for model in _every_kind(tmp_path):
        assert isinstance(model, LanguageModel), model.describe()
        model.eval()
        assert model.preferred_precision(torch.device("cpu")) in ("fp32", "bf16")
        assert set(model.limits).isdisjoint(model.capabilities)  # a reason only where lacking
        logits, state = model(torch.tensor([[1, 2, 3], [4, 5, 6]]))
        assert logits.shape == (2, 3, 8)
        shapes = model.state_shapes(2)
        assert tuple(shapes) == model.state_names
        if model.state_names:  # a carried state: named tensors, batch on dim 1
            assert [tuple(s.shape) for s in state] == list(shapes.values())
            assert [tuple(s.shape) for s in model.init_state(2)] == list(shapes.values())
            # continuing from the state equals reading the whole text at once
            whole, _ = model(torch.tensor([[1, 2, 3, 7], [4, 5, 6, 7]]))
            more, _ = model(torch.tensor([[7], [7]]), state)
            torch.testing.assert_close(more[:, -1], whole[:, -1], rtol=1e-4, atol=1e-5)
        else:
            assert model.context_size is not None  # no carried state: a bounded context
        if CELL_VIEW in model.capabilities:
            views = model.cell_states(torch.tensor([[1, 2, 3]]))
            assert set(views) == set(model.state_labels()) and "h" in views
