"""minGRU and minLSTM: the parallel scan is the recurrence, and the cells travel through every
command by the LanguageModel contract alone."""

from __future__ import annotations

import pytest
import torch

from conftest import TINY_FLAGS, plays
from nextchar.core.config import model_config
from nextchar.models import LanguageModel, build_model
from nextchar.models.minimal import MinCell, recurrence, scan

CELLS = ["mingru", "minlstm"]


def sequential(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """The definition, h_t = a_t h_{t-1} + b_t, one step at a time through plain autograd."""
    h, out = h0, []
    for t in range(a.shape[1]):
        h = a[:, t] * h + b[:, t]
        out.append(h)
    return torch.stack(out, 1)


def _grads(out: torch.Tensor, weights: torch.Tensor, inputs: list[torch.Tensor]) -> tuple:
    return torch.autograd.grad((out * weights).sum(), inputs, retain_graph=True)


@pytest.mark.parametrize("kind", CELLS)
def test_the_parallel_scan_equals_the_sequential_recurrence(kind: str) -> None:
    """The log-space scan (GPU path) and the fused recurrence (CPU path) both equal the
    definition, forward and gradients (for the inputs, the weights and the start state)."""
    torch.manual_seed(0)
    cell = MinCell(kind, 5, 7, bias=True).double()
    x = torch.randn(3, 40, 5, dtype=torch.double, requires_grad=True)
    h0 = torch.rand(3, 7, dtype=torch.double, requires_grad=True)
    log_a, log_b, _ = cell.log_coefficients(x)
    reference = sequential(log_a.exp(), log_b.exp(), h0)
    a, b, _ = cell.coefficients(x)
    inputs = [x, cell.linear.weight, h0]
    weights = torch.randn_like(reference)
    expected = _grads(reference, weights, inputs)
    for solved in (scan(log_a, log_b, h0), recurrence(a, b, h0), cell(x, h0)[0]):
        torch.testing.assert_close(solved, reference, rtol=1e-10, atol=1e-12)
        for got, want in zip(_grads(solved, weights, inputs), expected, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("kind", CELLS)
def test_float32_scan_and_recurrence_agree_over_a_long_window(kind: str) -> None:
    torch.manual_seed(1)
    cell = MinCell(kind, 6, 16, bias=True)
    x = 3 * torch.randn(2, 256, 6)  # strong gates: products of many a_t far below 1
    zero = torch.zeros(2, 16)
    log_a, log_b, gates = cell.log_coefficients(x)
    a, b, linear_gates = cell.coefficients(x)
    torch.testing.assert_close(
        scan(log_a, log_b, zero), recurrence(a, b, zero), rtol=1e-3, atol=1e-5
    )
    for name, value in gates.items():
        torch.testing.assert_close(value, linear_gates[name], rtol=1e-4, atol=1e-6)


def test_scan_with_a_zero_start_state_is_finite_and_exact_at_the_first_step() -> None:
    log_a = torch.log(torch.full((1, 3, 2), 0.5))
    log_b = torch.log(torch.tensor([[[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]]))
    h = scan(log_a, log_b, torch.zeros(1, 2))
    torch.testing.assert_close(h[0], torch.tensor([[1.0, 2.0], [1.5, 3.0], [1.75, 3.5]]))


@pytest.mark.parametrize("kind", CELLS)
def test_one_token_at_a_time_equals_the_whole_window(kind: str) -> None:
    torch.manual_seed(2)
    config = model_config(vocab_size=11, cell=kind, hidden_size=12, num_layers=2)
    model = build_model(config).eval()
    ids = torch.randint(0, 11, (2, 20))
    full, final = model(ids)
    state, steps = None, []
    for t in range(ids.shape[1]):  # sampling's path: one token, state carried
        logits, state = model(ids[:, t : t + 1], state)
        steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(state[0], final[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", CELLS)
def test_minimal_cells_meet_the_contract_and_show_their_gates(kind: str) -> None:
    model = build_model(model_config(vocab_size=9, cell=kind, hidden_size=6, num_layers=3))
    assert isinstance(model, LanguageModel)
    assert model.state_names == ("h",) and model.state_shapes(4) == {"h": (3, 4, 6)}
    assert "onnx" not in model.capabilities and "logcumsumexp" in model.limits["onnx"]
    states = model.cell_states(torch.tensor([[1, 2, 3, 4, 5]]))
    gates = {"mingru": {"h", "z"}, "minlstm": {"h", "f", "i"}}[kind]
    assert set(states) == set(model.state_labels()) == gates
    for name, values in states.items():
        assert values.shape == (3, 5, 6)
        if name != "h":  # gates are probabilities
            assert bool(((values >= 0) & (values <= 1)).all())
    if kind == "minlstm":  # the normalised gates share each step: f + i = 1
        torch.testing.assert_close(states["f"] + states["i"], torch.ones(3, 5, 6))


PLAYS = plays()
TINY = [*TINY_FLAGS, "--eval-every", "20"]


@pytest.mark.parametrize("kind", CELLS)
def test_the_command_line_trains_samples_evaluates_and_refuses_export(
    kind: str, tmp_path, cli, one_line
) -> None:
    from fastapi.testclient import TestClient

    from nextchar.serve import create_app, load_models

    (tmp_path / "plays.txt").write_text(PLAYS, encoding="utf-8")
    run = tmp_path / "run"
    code, out, err = cli("train", tmp_path / "plays.txt", "--cell", kind, "--out", run,
                         "--max-steps", "40", *TINY)  # fmt: skip
    assert code == 0, err
    assert "validation: best" in out
    code, out, _ = cli("sample", run, "--prime", "ROMEO:", "--length", "40", "--device", "cpu")
    assert code == 0 and out.startswith("ROMEO:") and len(out) > 40
    code, out, _ = cli("eval", run, tmp_path / "plays.txt", "--device", "cpu")
    assert code == 0 and "bits" in out
    code, _, err = cli("export", run, tmp_path / "m.onnx")
    one_line(code, err, rf"ONNX export is not available for {kind} .*logcumsumexp")
    assert not (tmp_path / "m.onnx").exists()
    # the web page's cell view: h and the gates, declared by the model
    client = TestClient(create_app(load_models([str(run)], "cpu"), ["testserver"]))
    info = client.get("/api/models").json()[0]
    assert info["has_cells"] and set(info["states"]) == set(GATES_OF[kind]) | {"h"}
    gate = GATES_OF[kind][0]
    r = client.post("/api/activations", json={"model": "run", "text": "ROMEO: my", "state": gate})
    values = torch.tensor(r.json()["values"])
    assert r.status_code == 200 and values.shape == (9, 24)
    assert bool(((values >= 0) & (values <= 1)).all())


GATES_OF = {"mingru": ["z"], "minlstm": ["f", "i"]}
