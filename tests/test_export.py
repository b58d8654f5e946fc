"""ONNX export: onnxruntime must compute what PyTorch computes, step after step, and the
exported file alone must sample the same text as the checkpoint."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from nextchar import NextcharError
from nextchar.core.config import model_config
from nextchar.inference.export import export_onnx
from nextchar.models import build_model, count_parameters, load
from nextchar.models.checkpoint import save_checkpoint
from nextchar.models.onnx import load_onnx
from nextchar.text.tokenizers import CharTokenizer

TEXT = "ROMEO: But soft, what light through yonder window breaks?\nJULIET: Ay me!\n" * 3
DEPLOY = Path(__file__).resolve().parents[1] / "docs" / "deploy.md"


def checkpoint(tmp_path: Path, **overrides) -> Path:
    tok = CharTokenizer.build(TEXT)
    torch.manual_seed(0)
    config = {"vocab_size": tok.vocab_size, "cell": "lstm", "hidden_size": 12, **overrides}
    model = build_model(model_config(**{"num_layers": 2, "embedding_dim": 6, **config}))
    return save_checkpoint(tmp_path / "ckpt", model.eval(), tok)


@pytest.mark.parametrize(
    "overrides",
    [
        {"cell": "lstm"},
        {"cell": "gru"},
        {"cell": "rnn", "nonlinearity": "relu"},
        {"cell": "lstm", "input": "onehot", "num_layers": 1},
        {"cell": "gru", "tie_weights": True, "embedding_dim": 12},
    ],
)
def test_onnxruntime_equals_pytorch_over_several_steps(tmp_path, overrides) -> None:
    path = export_onnx(checkpoint(tmp_path, **overrides), tmp_path / "m.onnx")
    torch_model, tok = load(tmp_path / "ckpt", device="cpu")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    assert names[0] == "ids" and names[1:] == (["h", "c"] if overrides["cell"] == "lstm" else ["h"])
    ids = torch.tensor([tok.encode(TEXT[:40]), tok.encode(TEXT[40:80]), tok.encode(TEXT[80:120])])
    state_t = None
    state_o = [s.numpy() for s in _as_tuple(torch_model.init_state(3))]
    # windows of several lengths, then single steps, the state carried through all of them
    for start, end in [(0, 7), (7, 20), (20, 21), (21, 22), (22, 40)]:
        x = ids[:, start:end]
        with torch.no_grad():
            logits_t, state_t = torch_model(x, state_t)
        logits_o, *state_o = session.run(
            None, {"ids": x.numpy(), **dict(zip(names[1:], state_o, strict=True))}
        )
        np.testing.assert_allclose(logits_o, logits_t.numpy(), atol=1e-5, rtol=0)
        for a, b in zip(state_o, _as_tuple(state_t), strict=True):
            np.testing.assert_allclose(a, b.numpy(), atol=1e-5, rtol=0)


def _as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def test_export_has_dynamic_batch_and_sequence_axes(tmp_path) -> None:
    path = export_onnx(checkpoint(tmp_path), tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    shapes = {i.name: i.shape for i in session.get_inputs()}
    assert shapes["ids"] == ["batch", "sequence"]
    assert shapes["h"] == [2, "batch", 12] and shapes["c"] == [2, "batch", 12]


def test_exported_file_samples_the_same_text_as_the_checkpoint(tmp_path, cli) -> None:
    ckpt = checkpoint(tmp_path)
    done = cli("export", str(ckpt), str(tmp_path / "out" / "m.onnx"))
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout and "state h, c" in done.stdout
    for flags in (["--greedy"], ["--seed", "3", "--top-k", "5"], ["--seed", "7"]):
        args = ["--prime", "ROMEO:", "--length", "120", "--device", "cpu", *flags]
        from_ckpt = cli("sample", str(ckpt), *args)
        from_onnx = cli("sample", str(tmp_path / "out" / "m.onnx"), *args)
        assert from_ckpt.returncode == 0 and from_onnx.returncode == 0, from_onnx.stderr
        assert from_onnx.stdout == from_ckpt.stdout
        assert len(from_onnx.stdout) > 120


def test_predict_and_eval_read_the_exported_file(tmp_path) -> None:
    from nextchar.inference.evaluate import evaluate_text
    from nextchar.inference.generate import predict_next

    ckpt = checkpoint(tmp_path, cell="gru")
    path = export_onnx(ckpt, tmp_path / "m.onnx")
    onnx_model, onnx_tok = load_onnx(path)
    torch_model, tok = load(ckpt, device="cpu")
    assert onnx_tok.to_dict() == tok.to_dict()
    assert count_parameters(onnx_model) == count_parameters(torch_model) > 0
    a, b = (
        predict_next(onnx_model, onnx_tok, "ROMEO", 5),
        predict_next(torch_model, tok, "ROMEO", 5),
    )
    assert [t for t, _ in a.candidates] == [t for t, _ in b.candidates]
    ra = evaluate_text(onnx_model, onnx_tok, TEXT, batch_size=2, seq_len=16)
    rb = evaluate_text(torch_model, tok, TEXT, batch_size=2, seq_len=16)
    assert ra.bits_per_char == pytest.approx(rb.bits_per_char, abs=1e-5)


def test_readme_onnxruntime_example_runs_and_greedy_matches_nextchar(tmp_path, cli) -> None:
    """docs/deploy.md's standalone onnxruntime loop: as written it samples; with argmax in place
    of the random choice it must reproduce `nextchar sample --greedy`."""
    section = DEPLOY.read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "int(rng.choice(len(p), p=p))" in code
    export_onnx(checkpoint(tmp_path), tmp_path / "runs" / "shakespeare.onnx")
    (tmp_path / "as_written.py").write_text(code)
    sampled = subprocess.run(
        [sys.executable, "as_written.py"], cwd=tmp_path, capture_output=True, text=True
    )
    assert sampled.returncode == 0, sampled.stderr
    assert sampled.stdout.startswith("ROMEO:") and len(sampled.stdout.rstrip("\n")) == 206
    greedy_code = code.replace("int(rng.choice(len(p), p=p))", "int(p.argmax())")
    (tmp_path / "greedy.py").write_text(greedy_code)
    greedy = subprocess.run(
        [sys.executable, "greedy.py"], cwd=tmp_path, capture_output=True, text=True
    )
    ours = cli(
        "sample",
        "runs/shakespeare.onnx",
        "--greedy",
        "--prime",
        "ROMEO:",
        "--length",
        "200",
        cwd=tmp_path,
    )
    assert greedy.returncode == 0, greedy.stderr
    assert greedy.stdout == ours.stdout


def test_bad_exports_are_clear_errors(tmp_path) -> None:
    ckpt = checkpoint(tmp_path)
    with pytest.raises(NextcharError, match=r"should end in \.onnx"):
        export_onnx(ckpt, tmp_path / "m.bin")
    with pytest.raises(NextcharError, match="no projection"):
        export_onnx(checkpoint(tmp_path / "p", proj_size=5), tmp_path / "p.onnx")
    with pytest.raises(NextcharError, match="no checkpoint"):
        export_onnx(tmp_path / "missing", tmp_path / "m.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(NextcharError, match="not a loadable ONNX model"):
        load_onnx(tmp_path / "junk.onnx")
    # a valid ONNX model that nextchar did not write: no tokenizer inside
    foreign = tmp_path / "foreign.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(torch.nn.Linear(2, 2), (torch.zeros(1, 2),), str(foreign), dynamo=False)
    with pytest.raises(NextcharError, match="not written by `nextchar export`"):
        load_onnx(foreign)
    assert not list(tmp_path.glob(".m.onnx.*"))  # no temporary file left behind


def test_gpt2_export_is_refused_with_a_pointer(tmp_path) -> None:
    tok = CharTokenizer.build(TEXT)
    config = model_config(
        kind="gpt2", vocab_size=tok.vocab_size, n_layer=1, n_head=1, n_embd=8, block_size=16
    )
    ckpt = save_checkpoint(tmp_path / "g", build_model(config), tok)
    with pytest.raises(NextcharError, match=r"ONNX export.*optimum"):
        export_onnx(ckpt, tmp_path / "g.onnx")
    assert not (tmp_path / "g.onnx").exists()


def test_missing_onnxruntime_names_the_install_command(tmp_path, monkeypatch) -> None:
    path = export_onnx(checkpoint(tmp_path), tmp_path / "m.onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(NextcharError, match=r'pip install "nextchar\[onnx\]"'):
        load_onnx(path)
