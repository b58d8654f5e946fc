"""End-to-end: train -> sample -> predict -> eval through the real command line."""

import json
import signal
import subprocess
import sys
import time

import pytest

from conftest import TINY_FLAGS, in_process, plays

CORPUS = plays()
TINY = [*TINY_FLAGS, "--eval-every", "20"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One run trained through main(argv) in this process, shared by the tests below."""
    root = tmp_path_factory.mktemp("e2e")
    (root / "plays.txt").write_text(CORPUS, encoding="utf-8")
    proc = in_process("train", "plays.txt", "--max-steps", "60", *TINY, cwd=root)
    assert proc.returncode == 0, proc.stderr
    return root, proc


def test_train_reports_and_writes_a_run(trained) -> None:
    root, proc = trained
    assert "validation: best" in proc.stdout and "bits per character" in proc.stdout
    run = root / "runs" / "plays"
    assert (run / "best" / "model.safetensors").exists()
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("val_bpc" in r for r in rows) and any("chars_per_sec" in r for r in rows)


def test_sample_is_streamed_and_repeatable(trained, cli) -> None:
    root, _ = trained
    args = (
        "sample",
        "runs/plays",
        "--prime",
        "ROMEO:",
        "--length",
        "80",
        "--seed",
        "3",
        "--device",
        "cpu",
    )
    a, b = cli(*args, cwd=root), cli(*args, cwd=root)
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout and a.stdout.startswith("ROMEO:")
    assert len(a.stdout.rstrip("\n")) >= 80
    two = cli(*args, "--num-samples", "2", "--top-k", "5", "--top-p", "0.9", cwd=root)
    assert two.stdout.count("--- sample") == 2
    greedy = cli(
        "sample", "runs/plays", "--prime", "JULIET: and", "--greedy", "--length", "20", cwd=root
    )
    assert greedy.returncode == 0 and greedy.stdout.startswith("JULIET: and")


def test_predict_shows_a_bar_chart_with_entropy(trained, cli) -> None:
    root, _ = trained
    proc = cli("predict", "runs/plays", "ROMEO: line 1, my lad", "--top-k", "3", cwd=root)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "entropy" in lines[0] and len(lines) == 4
    percents = [float(line.split("%")[0].split()[-1]) for line in lines[1:]]
    assert percents == sorted(percents, reverse=True) and "█" in lines[1]


def test_eval_reports_bits_per_character(trained, cli) -> None:
    root, _ = trained
    (root / "held.txt").write_text("JULIET: and yours, 3.\nROMEO: line 9, my lady.\n")
    proc = cli("eval", "runs/plays", "held.txt", "--json", cwd=root)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["chars"] == len("JULIET: and yours, 3.\nROMEO: line 9, my lady.\n") - 1
    assert r["bits_per_char"] == pytest.approx(r["nll_nats"] / r["chars"] / 0.693147, rel=1e-5)
    text = cli("eval", "runs/plays", "held.txt", cwd=root).stdout
    assert "bits" in text and "perplexity" in text


def test_dynamic_evaluation_is_reported_apart_from_the_static_number(trained, cli) -> None:
    root, _ = trained
    (root / "again.txt").write_text(CORPUS[:3000], encoding="utf-8")
    proc = cli("eval", "runs/plays", "again.txt", "--dynamic", "--json", cwd=root)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["dynamic_bits_per_char"] != r["bits_per_char"] > 0
    text = cli("eval", "runs/plays", "again.txt", "--dynamic", cwd=root).stdout
    assert "dynamic eval" in text and "separate measurement" in text
    table = cli(
        "compare", "again.txt", "runs/plays", "--dynamic", "--out", "c.png", cwd=root
    ).stdout
    assert "dynamic eval bpc" in table and "adapts to the text" in table
    refused = cli("eval", "runs/plays", "again.txt", "--dynamic-lr", "1e-3", cwd=root)
    assert refused.returncode == 2 and "need --dynamic" in refused.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sample", "runs/plays", "--prime", "ROMEO™"], "'™' (U+2122)"),
        (["sample", "runs/plays", "--temperature", "0"], "temperature must be > 0"),
        (["sample", "runs/plays", "--top-p", "1.5"], "top-p must be <= 1"),
        (["sample", "runs/plays", "--top-k", "0"], "top-k must be >= 1"),
        (["predict", "runs/plays", "Ωmega"], "not in the vocabulary"),
        (["sample", "runs/nothing"], "does not exist"),
        (["eval", "runs/plays", "missing.txt"], "no such file"),
        (
            ["train", "plays.txt", "--seq-len", "100000", "--max-steps", "1", "--out", "x"],
            "too few for batches",
        ),
        (["train", "plays.txt", "--out", "runs/plays", "--max-steps", "1"], "--resume"),
        (["train", "plays.txt", "--max-time", "soon"], "not a duration"),
        (["train"], "give the training text"),
        (["train", "--resume", "runs/plays", "--hidden-size", "8"], "only --max-steps"),
    ],
)
def test_bad_input_is_one_line(trained, cli, args, message) -> None:
    root, _ = trained
    proc = cli(*args, cwd=root)
    assert proc.returncode == 2, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_bad_training_files(tmp_path, cli) -> None:
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "one.txt").write_text("zzzzzzzzzzzzzzzzzzzzzzzz")
    (tmp_path / "latin1.txt").write_bytes("café olé ".encode("latin-1") * 50)
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text('{"format": "nextchar-checkpoint", "forma')
    cases = [
        (["train", "empty.txt"], "empty"),
        (["train", "one.txt"], "single distinct character"),
        (["train", "latin1.txt"], "latin1.txt: byte 3"),
        (["sample", "half"], "not JSON"),
    ]
    for args, message in cases:
        proc = cli(*args, "--device", "cpu", cwd=tmp_path)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1
    ok = cli(
        "train", "latin1.txt", "--encoding", "latin-1", "--max-steps", "3", *TINY, cwd=tmp_path
    )
    assert ok.returncode == 0, ok.stderr


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_ctrl_c_saves_and_resume_continues(tmp_path, cli, stop) -> None:
    """Ctrl-C, or a scheduler's or `docker stop`'s SIGTERM (a closed terminal's SIGHUP has
    the same handler: STOP_SIGNALS): the run finishes its step, saves a resumable last/ and
    says how to go on."""
    import nextchar.training.loop as loop

    assert {signal.SIGINT, signal.SIGTERM, signal.SIGHUP} <= set(loop.STOP_SIGNALS)
    (tmp_path / "plays.txt").write_text(CORPUS, encoding="utf-8")
    cmd = [
        sys.executable,
        "-m",
        "nextchar",
        "train",
        "plays.txt",
        "--out",
        "run",
        "--max-steps",
        "100000",
        "--log-every",
        "1",
        *TINY,
    ]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and metrics.read_text().count("\n") >= 3):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(getattr(signal, stop))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "nextchar train --resume run" in out
    state = json.loads((tmp_path / "run" / "last" / "trainer_state.json").read_text())
    stopped_at = state["step"]
    assert stopped_at >= 3
    resumed = cli(
        "train", "--resume", "run", "--max-steps", str(stopped_at + 5), "--quiet", cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    steps = [
        json.loads(line)["step"] for line in metrics.read_text().splitlines() if "loss" in line
    ]
    assert steps == list(range(1, stopped_at + 6))


def test_korean_nfc_and_nfd_compare_in_bits_per_nfc_character(tmp_path, cli) -> None:
    korean = (
        "대한민국은 민주공화국이다. 대한민국의 주권은 국민에게 있고, "
        "모든 권력은 국민으로부터 나온다.\n"
    )
    (tmp_path / "ko.txt").write_text(korean * 30, encoding="utf-8")
    held = "대한민국의 국민이 되는 요건은 법률로 정한다.\n"  # syllables never seen in training
    (tmp_path / "held.txt").write_text(held, encoding="utf-8")
    results = {}
    for name, extra in (("nfc", []), ("nfd", ["--normalization", "nfd"])):
        trained = cli(
            "train",
            "ko.txt",
            "--out",
            name,
            "--max-steps",
            "10",
            "--unk",
            *extra,
            *TINY,
            cwd=tmp_path,
        )
        assert trained.returncode == 0, trained.stderr
        proc = cli("eval", name, "held.txt", "--json", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        results[name] = json.loads(proc.stdout)
    nfc, nfd = results["nfc"], results["nfd"]
    assert nfc["chars"] == nfd["chars"] == len(held) - 1  # both per NFC character
    assert nfd["tokens"] > nfd["chars"] == nfc["tokens"]
    assert 0 <= nfd["unknown"] < nfc["unknown"]  # jamo cover unseen syllables
    # the validation text's characters join the vocabulary (as in char-rnn and nanoGPT);
    # only a text seen after training needs --unk
    covered = cli(
        "train",
        "ko.txt",
        "--out",
        "strict",
        "--max-steps",
        "1",
        "--val-file",
        "held.txt",
        *TINY,
        cwd=tmp_path,
    )
    assert covered.returncode == 0, covered.stderr
    (tmp_path / "later.txt").write_text("헌법 개정은 국회 재적의원 과반수의 발의로 제안된다.\n")
    refused = cli("eval", "strict", "later.txt", cwd=tmp_path)
    assert refused.returncode == 2 and "not in the vocabulary" in refused.stderr
    assert "--unk" in refused.stderr


def test_sample_without_prime_on_a_text_without_newlines(tmp_path, cli) -> None:
    (tmp_path / "ab.txt").write_text("abababbaab" * 80)
    trained = cli("train", "ab.txt", "--out", "run", "--max-steps", "3", *TINY, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    proc = cli("sample", "run", "--length", "15", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert set(proc.stdout.strip()) <= {"a", "b"} and len(proc.stdout.strip()) == 16


def test_max_time_alone_is_a_time_budget_without_a_step_cap(tmp_path, cli) -> None:
    (tmp_path / "plays.txt").write_text(CORPUS, encoding="utf-8")
    done = cli("train", "plays.txt", "--max-time", "1s", *TINY, "--out", "run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    meta = json.loads((tmp_path / "run" / "last" / "config.json").read_text())
    assert meta["train"]["max_steps"] is None and meta["train"]["max_time"] == 1.0
    both = cli(
        "train", "plays.txt", "--max-time", "1h", "--max-steps", "3", *TINY, "--out", "capped",
        cwd=tmp_path,
    )  # fmt: skip
    assert both.returncode == 0, both.stderr
    meta = json.loads((tmp_path / "capped" / "last" / "config.json").read_text())
    assert meta["train"]["max_steps"] == 3 and meta["step"] == 3
