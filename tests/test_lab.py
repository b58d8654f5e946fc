import pytest

from nextchar import NextcharError
from nextchar.classroom.lab import prepare_lab, run_lab
from nextchar.core.commands import LAB_SENTENCE, LabConfig


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_lab_defaults_converge_to_the_target(cell: str) -> None:
    result = run_lab(LabConfig(cell=cell, device="cpu"))
    assert result.target == LAB_SENTENCE[1:] == "seoul is the capital of south korea"
    assert result.converged
    assert result.first_match_epoch is not None and result.first_match_epoch < 500
    assert result.final_loss < result.steps[0].loss / 4
    # printed at 0, every 50, and the last epoch, as the notes do
    assert [s.epoch for s in result.steps] == [*range(0, 500, 50), 499]


def test_lab_learns_a_korean_sentence() -> None:
    result = run_lab(LabConfig(sentence=" 서울은 대한민국의 수도이다", device="cpu"))
    assert result.converged and result.final_prediction == "서울은 대한민국의 수도이다"


def test_lab_follows_the_notes_setup() -> None:
    lab = prepare_lab(LabConfig(device="cpu"))
    v = lab.tokenizer.vocab_size
    assert v == len(set(LAB_SENTENCE))
    assert lab.tokenizer.vocab == sorted(set(LAB_SENTENCE))
    cfg = lab.model.config
    assert (cfg.input, cfg.input_size, cfg.hidden_size, cfg.cell) == ("onehot", v, v, "rnn")
    assert lab.x.shape == lab.y.shape == (1, len(LAB_SENTENCE) - 1)
    assert lab.tokenizer.decode(lab.x[0].tolist()) == LAB_SENTENCE[:-1]


def test_too_few_epochs_is_reported_not_hidden() -> None:
    result = run_lab(LabConfig(epochs=20, device="cpu"))
    assert not result.converged and result.first_match_epoch is None


def test_same_seed_same_trace_other_seed_other_trace() -> None:
    a = run_lab(LabConfig(epochs=60, every=20, device="cpu"))
    b = run_lab(LabConfig(epochs=60, every=20, device="cpu"))
    c = run_lab(LabConfig(epochs=60, every=20, device="cpu", seed=1))
    assert a.steps == b.steps
    assert a.steps != c.steps


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sentence": ""}, "at least 2 characters"),
        ({"sentence": "a"}, "at least 2 characters"),
        ({"sentence": "aaaa"}, "one distinct character"),
        ({"epochs": 0}, "epochs must be >= 1"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"cell": "lstm", "nonlinearity": "relu"}, "rnn cell only"),
    ],
)
def test_bad_lab_input(kwargs: dict, message: str) -> None:
    with pytest.raises(NextcharError, match=message):
        prepare_lab(LabConfig(**{"device": "cpu", **kwargs}))


@pytest.mark.cuda
@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_lab_converges_on_cuda(cell: str) -> None:
    result = run_lab(LabConfig(cell=cell, device="cuda"))
    assert result.device.startswith("cuda")
    assert result.converged
