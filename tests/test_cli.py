"""End-to-end: the real command line in a fresh process."""

import re

import pytest

from nextchar.cli import main

TARGET = "seoul is the capital of south korea"


def trace(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("epoch")]


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_lab_prints_the_trace_and_ends_in_the_target(cli, cell: str) -> None:
    proc = cli("lab", "--cell", cell, "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    lines = trace(proc.stdout)
    assert len(lines) == 11
    assert all(re.search(r"loss : \d+\.\d+ prediction : ", line) for line in lines)
    assert lines[-1].endswith(f"prediction : {TARGET}")
    assert re.search(r"first equalled the target at epoch \d+", proc.stdout)
    assert f"final : {TARGET}   (equals the target)" in proc.stdout


def test_lab_korean_sentence(cli) -> None:
    proc = cli("lab", "--sentence", " 서울은 대한민국의 수도이다", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert trace(proc.stdout)[-1].endswith("prediction : 서울은 대한민국의 수도이다")


@pytest.mark.slow
def test_lab_trace_does_not_depend_on_python_hash_seed(run_process) -> None:
    args = ("lab", "--epochs", "40", "--every", "10", "--device", "cpu")
    a = run_process(*args, env={"PYTHONHASHSEED": "1"})
    b = run_process(*args, env={"PYTHONHASHSEED": "12345"})
    assert a.returncode == b.returncode == 0
    assert trace(a.stdout) == trace(b.stdout) and len(trace(a.stdout)) == 5


def test_shapes_example_from_the_issue(cli) -> None:
    proc = cli(
        "shapes",
        "--cell",
        "lstm",
        "--input-size",
        "4",
        "--hidden-size",
        "2",
        "--batch",
        "1",
        "--seq-len",
        "5",
        "--batch-first",
    )
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line.split()[-3:] for line in proc.stdout.splitlines() if line}
    assert rows["output"] == ["(1,", "5,", "2)"]
    assert rows["h_n"] == ["(1,", "1,", "2)"]
    assert rows["c_n"] == ["(1,", "1,", "2)"]


def test_python_dash_m_and_console_script_agree(cli, capsys) -> None:
    assert main(["shapes", "--cell", "gru", "--seq-first"]) == 0
    in_process = capsys.readouterr().out
    assert cli("shapes", "--cell", "gru", "--seq-first").stdout == in_process
    assert "(L, N, H_in)" in in_process


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lab", "--sentence", ""], "at least 2 characters"),
        (["lab", "--sentence", "x"], "at least 2 characters"),
        (["lab", "--epochs", "many"], "invalid int value"),
        (["lab", "--epochs", "0"], "epochs must be >= 1"),
        (["lab", "--cell", "lstm", "--nonlinearity", "relu"], "rnn cell only"),
        (["lab", "--cell", "transformer"], "invalid choice"),
        (["shapes", "--cell", "gru", "--proj-size", "1"], "LSTM option"),
        (["shapes", "--cell", "lstm", "--hidden-size", "2", "--proj-size", "3"], "smaller"),
        (["shapes", "--hidden-size", "0"], "--hidden-size must be >= 1"),
        (["shapes", "--batch-first", "--seq-first"], "not allowed with"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_arguments_give_one_line_and_nonzero_exit(cli, args, message) -> None:
    proc = cli(*args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr


def test_cuda_request_without_cuda_is_a_clear_error(cli) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    proc = cli("lab", "--device", "cuda")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "--device cpu" in proc.stderr


@pytest.mark.parametrize(
    ("argv", "suggestion"),
    [
        (["train", "korean", "--max-stpes", "3"], "--max-steps"),
        (["experiment", "long-range", "--distnces", "3"], "--distances"),
        (["sample", "run", "--temprature", "0.5"], "--temperature"),
    ],
)
def test_a_misspelt_flag_gets_a_suggestion_from_its_command(cli, one_line, argv, suggestion):
    proc = cli(*argv)
    one_line(proc.returncode, proc.stderr, rf"arguments: .*\(did you mean {suggestion}\?\)")
