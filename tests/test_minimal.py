"""minGRU and minLSTM: the parallel scan is the recurrence, and the cells travel through every
command by the LanguageModel contract alone."""

from __future__ import annotations

import pytest
import torch

from nextchar.config import ModelConfig
from nextchar.models import LanguageModel, build_model
from nextchar.models.minimal import MinCell, scan

CELLS = ["mingru", "minlstm"]


def sequential(cell: MinCell, x: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """h_t = a_t h_{t-1} + b_t one step at a time, from the cell's own coefficients."""
    log_a, log_b, _ = cell.log_coefficients(x)
    h, out = h0, []
    for t in range(x.shape[1]):
        h = log_a[:, t].exp() * h + log_b[:, t].exp()
        out.append(h)
    return torch.stack(out, 1)


@pytest.mark.parametrize("kind", CELLS)
def test_the_parallel_scan_equals_the_sequential_recurrence(kind: str) -> None:
    torch.manual_seed(0)
    cell = MinCell(kind, 5, 7, bias=True).double()
    x = torch.randn(3, 40, 5, dtype=torch.double, requires_grad=True)
    h0 = torch.rand(3, 7, dtype=torch.double)
    parallel, _ = cell(x, h0)
    reference = sequential(cell, x, h0)
    torch.testing.assert_close(parallel, reference, rtol=1e-10, atol=1e-12)
    # gradients through the scan equal those through the loop, for inputs and weights
    weights = torch.randn_like(reference)
    grads = torch.autograd.grad((parallel * weights).sum(), [x, cell.linear.weight])
    expected = torch.autograd.grad((reference * weights).sum(), [x, cell.linear.weight])
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("kind", CELLS)
def test_float32_scan_stays_close_over_a_long_window(kind: str) -> None:
    torch.manual_seed(1)
    cell = MinCell(kind, 6, 16, bias=True)
    x = 3 * torch.randn(2, 256, 6)  # strong gates: products of many a_t far below 1
    zero = torch.zeros(2, 16)
    parallel, _ = cell(x, zero)
    torch.testing.assert_close(parallel, sequential(cell, x, zero), rtol=1e-3, atol=1e-5)


def test_scan_with_a_zero_start_state_is_finite_and_exact_at_the_first_step() -> None:
    log_a = torch.log(torch.full((1, 3, 2), 0.5))
    log_b = torch.log(torch.tensor([[[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]]))
    h = scan(log_a, log_b, torch.zeros(1, 2))
    torch.testing.assert_close(h[0], torch.tensor([[1.0, 2.0], [1.5, 3.0], [1.75, 3.5]]))


@pytest.mark.parametrize("kind", CELLS)
def test_one_token_at_a_time_equals_the_whole_window(kind: str) -> None:
    torch.manual_seed(2)
    config = ModelConfig(vocab_size=11, cell=kind, hidden_size=12, num_layers=2)
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
    model = build_model(ModelConfig(vocab_size=9, cell=kind, hidden_size=6, num_layers=3))
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


PLAYS = "".join(f"ROMEO: line {i}, my lady.\nJULIET: and yours, {i % 7}.\n" for i in range(150))
TINY = ["--hidden-size", "24", "--embedding-dim", "16", "--batch-size", "4", "--seq-len", "32",
        "--eval-every", "20", "--warmup-steps", "5", "--lr", "0.01", "--device", "cpu",
        "--quiet"]  # fmt: skip


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
