"""The notebook API: `from nextchar import lab, shapes, train, load, sample, predict` return
objects that print the command line's text and show themselves in Jupyter."""

from __future__ import annotations

import re
import sys

import pytest
from tests.conftest import TINY as TINY_SIZES
from tests.conftest import TINY_TRAINING, in_process

import nextchar
from nextchar import NextcharError

TEXT = "the cat sat on the mat. the dog sat on the log. " * 40
TINY = {**TINY_SIZES, **TINY_TRAINING}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    (root / "text.txt").write_text(TEXT, encoding="utf-8")
    result = nextchar.train(
        root / "text.txt", out=root / "run", max_steps=4, eval_every=2, progress=False, **TINY
    )
    return result


def test_lab_prints_what_the_command_prints(capsys) -> None:
    result = nextchar.lab(epochs=120, every=40, cell="gru")
    streamed = capsys.readouterr().out  # a script sees the trace as it goes, as the command
    assert "epoch  40" in streamed and streamed.startswith("model : nn.GRU")
    proc = in_process("lab", "--epochs", "120", "--every", "40", "--cell", "gru")
    assert proc.returncode == 0
    # the same text, but for the time and for how the advice names the option: the keyword
    # that Python code passes, the flag that a command line types
    keep = lambda text: [ln for ln in text.splitlines() if not ln.startswith(("time", "result"))]  # noqa: E731
    assert keep(str(result)) == keep(proc.stdout)
    assert "try epochs=240" in str(result) and "try --epochs 240" in proc.stdout
    assert repr(result) == str(result)


def test_lab_html_marks_each_wrong_character() -> None:
    result = nextchar.lab(epochs=400, every=100)
    html = result._repr_html_()
    assert html.count("<tr>") == len(result.steps) + 1  # the header row too
    first, last = result.steps[0], result.steps[-1]
    wrong_first = sum(a != b for a, b in zip(first.prediction, result.target, strict=True))
    assert wrong_first > 0 and last.prediction == result.target
    rows = html.split("<tr>")[2:]
    assert rows[0].count("background: #f4c7c3") == wrong_first
    assert "background" not in rows[-1]
    assert "equals the target" in html


def test_lab_refuses_unknown_options() -> None:
    with pytest.raises(NextcharError, match=r"lab\(\) has no option epoch \(did you mean epochs"):
        nextchar.lab(epoch=3)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"epochs": "5"}, "epochs must be an integer, got '5'"),
        ({"epochs": True}, "epochs must be an integer, got True"),
        ({"epochs": 0}, "epochs must be >= 1, got 0"),
        ({"lr": float("nan")}, "lr must be a finite number"),
        ({"cell": "lsmt"}, "cell must be one of 'rnn', 'lstm', 'gru', got 'lsmt'"),
        ({"seed": 1.5}, "seed must be an integer, got 1.5"),
    ],
)
def test_keywords_are_checked_as_the_command_line_checks_flags(options, message) -> None:
    """A keyword is not parsed from text: its type is checked, then its bounds, and the
    message names the keyword (not a flag) -- the same option fields as the CLI's."""
    with pytest.raises(NextcharError, match=re.escape(message)):
        nextchar.lab(progress=False, **options)


def test_sample_keywords_are_checked_too(run_dir) -> None:
    with pytest.raises(NextcharError, match=re.escape("seed must be an integer, got 1.5")):
        nextchar.sample(run_dir, "the ", seed=1.5)
    with pytest.raises(NextcharError, match=r"temperature must be > 0.*greedy"):
        nextchar.sample(run_dir, "the ", temperature=0)


def test_shapes_prints_the_command_and_shows_tables() -> None:
    table = nextchar.shapes("lstm", input_size=3, hidden_size=4, proj_size=2, bidirectional=True)
    proc = in_process(
        "shapes", "--cell", "lstm", "--input-size", "3", "--hidden-size", "4",
        "--proj-size", "2", "--bidirectional",
    )  # fmt: skip
    assert str(table) == proc.stdout
    html = table._repr_html_()
    assert html.count("<table>") == 2
    for row in table.sequence + table.weights:
        assert f">{row.name}<" in html
    assert "(2, 1, 2)" in html  # h_0 with D=2 and the projection's H_out


def test_train_returns_a_summary_with_its_curves(run_dir) -> None:
    result = run_dir
    assert result.step == 4 and (result.run_dir / "best").is_dir()
    text = str(result)
    assert text.startswith("done: 4 steps")
    assert f"validation: best {result.final_val_bpc:.4f} bits per character" in text
    html = result._repr_html_()
    assert re.search(
        r'<img alt="training curves" src="data:image/png;base64,[A-Za-z0-9+/]{200}', html
    )


def test_train_refuses_unknown_options(tmp_path) -> None:
    with pytest.raises(
        NextcharError, match=r"train\(\) has no option max_tim \(did you mean max_time\?\)"
    ):
        nextchar.train("korean", out=tmp_path / "r", max_tim=3)
    assert not (tmp_path / "r").exists()


def test_load_predict_and_sample_match_the_commands(run_dir) -> None:
    run = run_dir.run_dir
    loaded = nextchar.load(run, device="cpu")
    model, tokenizer = loaded  # still unpacks as the library's (model, tokenizer)
    assert model is loaded.model
    assert tokenizer.vocab_size == len(set(TEXT))
    assert f"{tokenizer.vocab_size:,} characters" in repr(loaded)

    prediction = nextchar.predict(loaded, "the cat s", k=3)
    proc = in_process("predict", run, "the cat s", "--top-k", "3", "--device", "cpu")
    assert str(prediction) + "\n" == proc.stdout
    html = prediction._repr_html_()
    assert html.count("<tr>") == 3 and "entropy" in html

    text = nextchar.sample(run, "the ", length=30, seed=3)
    proc = in_process("sample", run, "--prime", "the ", "--length", "30", "--seed", "3")
    # the prime and its continuation, as the command prints them
    assert len(text) == 4 + 30 and text.startswith("the ") and proc.stdout == text + "\n"
    assert loaded.sample("the ", length=30, seed=3) == text
    assert nextchar.sample(run_dir, "the ", length=30, seed=3) == text  # a run's result too


def test_evaluate_matches_the_command(run_dir, tmp_path) -> None:
    (tmp_path / "t.txt").write_text(TEXT[:400], encoding="utf-8")
    result = nextchar.evaluate(run_dir, tmp_path / "t.txt")
    proc = in_process("eval", run_dir.run_dir, tmp_path / "t.txt", "--json")
    assert f'"bits_per_char": {result.bits_per_char}' in proc.stdout
    with pytest.raises(NextcharError, match=r"evaluate\(\) has no option seqlen \(did you"):
        nextchar.evaluate(run_dir, tmp_path / "t.txt", seqlen=4)


def test_train_resumes_a_run(tmp_path) -> None:
    (tmp_path / "text.txt").write_text(TEXT, encoding="utf-8")
    first = nextchar.train(
        tmp_path / "text.txt", out=tmp_path / "run", max_steps=2, eval_every=2, progress=False,
        **TINY,
    )  # fmt: skip
    again = nextchar.train(resume=first.run_dir, max_steps=4, progress=False)
    assert (first.step, again.step) == (2, 4) and again.run_dir == first.run_dir
    with pytest.raises(NextcharError, match=r"resume='.*run'"):  # keywords, not flags
        nextchar.train(tmp_path / "text.txt", out=first.run_dir, progress=False, **TINY)


def test_progress_without_ipywidgets_in_jupyter_falls_back_to_text(monkeypatch) -> None:
    """In a kernel, tqdm.auto's widget raises 'IProgress not found' without ipywidgets: the
    bar must not be asked for then, and a text bar is drawn instead."""
    import importlib.util

    from nextchar.display import progress as module

    def widget(*args: object, **kwargs: object) -> None:
        raise ImportError("IProgress not found. Please update jupyter and ipywidgets.")

    monkeypatch.setitem(sys.modules, "ipykernel", sys.modules.get("ipykernel", module))
    monkeypatch.setattr(module, "auto_tqdm", widget)
    real = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "ipywidgets" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    bar = module.progress(range(3), total=3)
    assert sum(bar) == 3
    bar.close()


def test_text_heat_colours_each_token_by_its_sign_and_size() -> None:
    from nextchar.display import htmlview

    html = htmlview.text_heat(["a", "<", "\n"], [2.0, -1.0, 0.0])
    spans = html.split("<span")[1:]
    assert len(spans) == 3
    assert "214, 39, 40, 1.00" in spans[0]  # the largest, positive: full red
    assert "31, 119, 180, 0.50" in spans[1] and "&lt;" in spans[1]  # escaped, half blue
    assert "0.00" in spans[2] and "↵" in spans[2]  # a newline stays visible
