import json

import pytest
import torch
import torch.nn.functional as F

from nextchar import NextcharError
from nextchar.classroom.long_range import (
    DISTRACTORS,
    PAIRS,
    QUERY,
    STOI,
    SYMBOLS,
    LongRangeConfig,
    chance_level,
    input_gradient_norms,
    make_batch,
    train_one,
)
from nextchar.core.config import model_config
from nextchar.models import build_model

ITOS = {i: c for c, i in STOI.items()}


def text(ids: torch.Tensor) -> list[str]:
    return ["".join(ITOS[int(i)] for i in row) for row in ids]


@pytest.mark.parametrize("distance", [1, 7, 30])
def test_remember_answer_is_the_first_symbol_and_nothing_else(distance: int) -> None:
    ids, answers = make_batch("remember", distance, 500, torch.Generator().manual_seed(0))
    assert ids.shape == (500, distance + 2)
    for row, answer in zip(text(ids), answers.tolist(), strict=True):
        assert row[0] in SYMBOLS and row[-1] == QUERY
        assert set(row[1:-1]) <= set(DISTRACTORS)  # the middle carries no clue
        assert ITOS[answer] == row[0]


@pytest.mark.parametrize("distance", [1, 12])
def test_brackets_answer_closes_the_opener(distance: int) -> None:
    ids, answers = make_batch("brackets", distance, 500, torch.Generator().manual_seed(1))
    closer = {p[0]: p[1] for p in PAIRS}
    for row, answer in zip(text(ids), answers.tolist(), strict=True):
        assert set(row[1:]) <= set(DISTRACTORS) and len(row) == distance + 1
        assert ITOS[answer] == closer[row[0]]


@pytest.mark.parametrize(("task", "k"), [("remember", len(SYMBOLS)), ("brackets", len(PAIRS))])
def test_chance_level_matches_uniform_answers(task: str, k: int) -> None:
    assert chance_level(task) == pytest.approx(1 / k)
    _, answers = make_batch(task, 3, 16_000, torch.Generator().manual_seed(2))
    counts = torch.bincount(answers).float()
    freqs = counts[counts > 0] / answers.numel()
    assert freqs.numel() == k
    assert torch.allclose(freqs, torch.full_like(freqs, 1 / k), atol=0.02)
    # the best answer-blind guess is right at the chance level
    assert float(freqs.max()) == pytest.approx(chance_level(task), abs=0.02)


def test_gradient_norms_match_finite_differences() -> None:
    torch.manual_seed(0)
    model = build_model(
        model_config(vocab_size=len(STOI), cell="rnn", hidden_size=6, embedding_dim=4)
    ).double()
    ids, answers = make_batch("remember", 3, 2, torch.Generator().manual_seed(3))
    norms = input_gradient_norms(model, ids, answers)
    x = model.embed(ids).detach()

    @torch.no_grad()
    def loss_of(inputs: torch.Tensor) -> float:
        logits, _ = model.forward_inputs(inputs)
        return float(F.cross_entropy(logits[:, -1], answers, reduction="sum"))

    eps = 1e-6
    grad = torch.zeros_like(x)
    for index in torch.cartesian_prod(*(torch.arange(n) for n in x.shape)):
        step = torch.zeros_like(x)
        step[tuple(index)] = eps
        grad[tuple(index)] = (loss_of(x + step) - loss_of(x - step)) / (2 * eps)
    expected = grad.norm(dim=-1).mean(dim=0)
    torch.testing.assert_close(norms, expected, rtol=1e-5, atol=1e-8)


def test_lstm_remembers_where_a_tanh_rnn_is_at_chance() -> None:
    config = LongRangeConfig(steps=250, hidden_size=32)
    device = torch.device("cpu")
    _, rnn = train_one("remember", "rnn", 5, 0, config, device)
    _, lstm = train_one("remember", "lstm", 5, 0, config, device)
    assert rnn < chance_level("remember") + 0.15  # near chance (1/8)
    assert lstm > rnn + 0.5


def test_cli_writes_table_json_and_plots(tmp_path, cli) -> None:
    proc = cli(
        "experiment",
        "long-range",
        "--distances",
        "2,3",
        "--seeds",
        "2",
        "--steps",
        "5",
        "--cells",
        "rnn,gru",
        "--tasks",
        "remember",
        "--out",
        str(tmp_path / "out"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "remember: accuracy at the answer (chance 12%)" in proc.stdout
    assert "D=3" in proc.stdout and "gru" in proc.stdout
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(result["accuracy"]["remember"]) == {"rnn", "gru"}
    assert len(result["accuracy"]["remember"]["gru"]["3"]) == 2
    assert len(result["gradients"]["remember"]["rnn"]["untrained"]) == 3 + 2
    for name in ("accuracy.png", "gradients.png"):
        assert (tmp_path / "out" / name).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--distances", "0,5"], "--distances"),
        (["--distances", "a,b"], "comma-separated integers"),
        (["--cells", "rnn,transformer"], "--cells"),
        (["--tasks", "copy"], "--tasks"),
        (["--seeds", "0"], "--seeds"),
    ],
)
def test_bad_experiment_arguments(cli, args, message) -> None:
    proc = cli("experiment", "long-range", *args)
    assert proc.returncode == 2 and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_bad_batch_arguments() -> None:
    with pytest.raises(NextcharError, match="unknown task"):
        make_batch("copy", 3, 2, torch.Generator())
    with pytest.raises(NextcharError, match="distance"):
        make_batch("remember", 0, 2, torch.Generator())
