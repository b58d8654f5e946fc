import itertools

import pytest

from nextchar import NextcharError
from nextchar.classroom.shapes import explain, render
from nextchar.core.commands import ShapeConfig

GRID = [
    ShapeConfig(
        cell=cell,
        input_size=3,
        hidden_size=5,
        num_layers=layers,
        bidirectional=bi,
        proj_size=proj,
        batch_first=bf,
        batch=2,
        seq_len=4,
        unbatched=unbatched,
    )
    for cell, layers, bi, proj, bf, unbatched in itertools.product(
        ["rnn", "lstm", "gru"], [1, 2], [False, True], [0, 2], [True, False], [False, True]
    )
    if not (proj and cell != "lstm")
]


@pytest.mark.parametrize("args", GRID, ids=str)
def test_formulas_agree_with_torch(args: ShapeConfig) -> None:
    sequence, weights = explain(args)
    for row in sequence + weights:
        assert row.notation != "?", f"torch has a parameter the explainer does not know: {row}"
        assert row.expected == row.actual, row


def test_lstm_example_from_the_notes() -> None:
    args = ShapeConfig(cell="lstm", input_size=4, hidden_size=2, batch=1, seq_len=5)
    rows = {r.name: r.actual for r in explain(args)[0]}
    assert rows["output"] == (1, 5, 2)
    assert rows["h_n"] == (1, 1, 2) and rows["c_n"] == (1, 1, 2)
    text = render(args)
    assert "output" in text and "(N, L, D*H_out)" in text and "(1, 5, 2)" in text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cell": "rnn", "proj_size": 1}, "LSTM option"),
        ({"cell": "gru", "proj_size": 1}, "LSTM option"),
        ({"cell": "lstm", "hidden_size": 2, "proj_size": 2}, "smaller than hidden_size"),
        ({"input_size": 0}, "input_size must be >= 1"),
        ({"seq_len": 0}, "seq_len must be >= 1"),
        ({"num_layers": 0}, "num_layers must be >= 1"),
    ],
)
def test_invalid_combinations(kwargs: dict, message: str) -> None:
    with pytest.raises(NextcharError, match=message):
        ShapeConfig(**kwargs)
