"""Every command against careless and hostile flags: one line on stderr and exit 2, or the
right answer; limits named in the error; no file left half-written."""

import io
import time

import pytest

from conftest import tiny_checkpoint
from nextchar.core.commands import MAX_SAMPLE_LENGTH

TEXT = "ROMEO: But soft, what light through yonder window breaks?\nJULIET: Ay me!\n" * 3


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    return tiny_checkpoint(tmp_path_factory.mktemp("m"), TEXT)


SEED = "--seed must be in 0..9223372036854775807"


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (["sample", "{ckpt}", "--seed", str(2**64)], SEED),
        (["sample", "{ckpt}", "--seed", str(2**63)], SEED),
        (
            ["sample", "{ckpt}", "--length", str(10**20)],
            rf"in 0\.\.{MAX_SAMPLE_LENGTH}.*ask for less",
        ),
        (["sample", "{ckpt}", "--temperature", "inf"], "--temperature must be a finite number"),
        (["sample", "{ckpt}", "--top-p", "nan"], "--top-p must be a finite number"),
        (["lab", "--seed", str(2**70)], SEED),
        (["lab", "--hidden-size", "0"], "--hidden-size must be >= 1, got 0"),
        (["lab", "--lr", "inf"], "--lr must be a finite number"),
        (["chat", "{ckpt}", "--seed", str(2**64)], SEED),
        (["chat", "{ckpt}", "--top", "0"], "--top-k must be >= 1"),
        (["shapes", "--hidden-size", "10000000"], "not enough memory for these shapes"),
        (["export", "{ckpt}", "{tmp}/m.onnx", "--opset", "9999"], r"--opset must be in 7\.\.20"),
        (["export", "{ckpt}", "{tmp}/m.onnx", "--opset", "1"], r"--opset must be in 7\.\.20"),
        (["compare", "{ckpt}/config.json", "{ckpt}", "--out", "/proc/x/c.png"], "cannot write"),
        (["compare", "{ckpt}/config.json", "{ckpt}", "--out", "{tmp}"], "is a directory"),
        (["compare", "{ckpt}/config.json", "{ckpt}", "--out", "chart.txt"], "name a .png"),
    ],
)
def test_bad_flags_are_one_line(ckpt, tmp_path, cli, one_line, argv, pattern) -> None:
    argv = [a.format(ckpt=ckpt, tmp=tmp_path) for a in argv]
    code, _, err = cli(*argv)
    one_line(code, err, pattern)
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary


def test_a_vanishing_temperature_or_top_p_samples_the_greedy_text(ckpt, cli, one_line) -> None:
    args = ["sample", ckpt, "--prime", "ROMEO", "--length", "40", "--device", "cpu"]
    code, greedy, _ = cli(*args, "--greedy")
    assert code == 0
    for flag in (["--temperature", "1e-300"], ["--top-p", "1e-300"], ["--temperature", "5e-324"]):
        code, out, err = cli(*args, *flag)
        assert code == 0, err
        assert out == greedy


def test_the_lab_prints_the_nonlinearity_it_uses(cli, one_line) -> None:
    code, out, _ = cli("lab", "--nonlinearity", "relu", "--epochs", "2", "--device", "cpu")
    assert code == 0
    assert "nn.RNN(input_size=15, hidden_size=15, nonlinearity='relu', batch_first=True)" in out


def test_chat_help_limits_and_bad_lines(ckpt, cli, one_line, monkeypatch) -> None:
    lines = [":help", "R" * 1_000_000, ":length 99999999999", "ROMEO", ":quit"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    start = time.monotonic()
    code, out, err = cli("chat", ckpt, "--length", "5", "--device", "cpu")
    assert code == 0, err
    assert time.monotonic() - start < 60  # the million-character line is refused, not read
    assert "settings: :temperature X" in out and ":help" in out
    assert "error: the line has 1,000,000 characters; chat reads at most 4,000" in out
    assert "error: --length must be in 0..1000000, got 99999999999" in out
    assert "after 'ROMEO'" in out  # and the session goes on


def test_predict_on_a_name_the_hub_cannot_answer_says_so_at_once(
    cli, one_line, monkeypatch
) -> None:
    pytest.importorskip("transformers")
    import importlib

    gpt2 = importlib.import_module("nextchar.models.gpt2")
    monkeypatch.setattr(gpt2, "_hub_reachable", lambda timeout=3.0: False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    code, _, err = cli("predict", "nosuchmodel", "hello")
    one_line(code, err, "not a checkpoint or run directory here.*hub cannot be reached")
    code, _, err = cli("predict", "./nosuchmodel", "hello")  # a path, plainly
    one_line(code, err, "no checkpoint at nosuchmodel: the directory does not exist")


@pytest.mark.parametrize("odd", ["\n", "\x1e", "\r", "\u2028", "\x1b[31m"])
def test_a_name_with_line_breaking_characters_is_still_one_line(ckpt, cli, one_line, odd):
    code, _, err = cli("eval", ckpt, f"no{odd}such.txt")
    one_line(code, err, r"no\\.*such\.txt")
    assert odd not in err.strip()
