"""Training and resuming against careless input and faults: nothing of the user's is lost,
a diverged run stops with one line and keeps its last good checkpoint, a killed save is
recovered, and every bad flag is one line on stderr (exit 2), never a traceback."""

import importlib
import json
import math
import os
import re

import pytest
import torch

from conftest import TINY as TINY_SIZES
from conftest import TINY_FLAGS
from conftest import plays as play_text
from nextchar.core.config import TrainConfig, model_config
from nextchar.models import build_model, load
from nextchar.models.checkpoint import save_checkpoint
from nextchar.text.data import load_corpus
from nextchar.text.tokenizers import CharTokenizer

TEXT = play_text(60)
TINY = model_config(cell="gru", **TINY_SIZES)
FLAGS = [*TINY_FLAGS, "--eval-tokens", "200"]


@pytest.fixture
def plays(tmp_path):
    path = tmp_path / "plays.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def strict_rows(path) -> list[dict]:
    def refuse(constant: str) -> float:
        raise AssertionError(f"metrics.jsonl holds {constant}, which JSON does not have")

    return [json.loads(line, parse_constant=refuse) for line in path.read_text().splitlines()]


# ----------------------------------------------------------------------------- the user's files


@pytest.mark.parametrize("existing", ["best", "best.old", "last.old", "notes.txt"])
def test_a_new_run_never_replaces_files_in_its_directory(plays, tmp_path, cli, one_line, existing):
    out = tmp_path / "out"
    target = out / existing
    if "." in existing and not existing.endswith(".old"):
        target.parent.mkdir()
        target.write_text("my notes")
    else:
        target.mkdir(parents=True)
        (target / "mine.txt").write_text("my model")
    code, _, err = cli("train", plays, "--out", out, "--max-steps", "2", *FLAGS)
    one_line(code, err, "--resume" if existing == "last.old" else "not empty")
    assert sorted(p.name for p in out.iterdir()) == [existing]  # untouched
    assert target.read_text() if target.is_file() else (target / "mine.txt").read_text()


def test_out_that_is_a_file_or_cannot_be_made_is_one_line(plays, tmp_path, cli, one_line) -> None:
    code, _, err = cli("train", plays, "--out", plays, "--max-steps", "2", *FLAGS)
    one_line(code, err, "is a file")
    assert plays.read_text() == TEXT
    code, _, err = cli("train", plays, "--out", "/proc/nextchar/run", *FLAGS)
    one_line(code, err, "cannot create the run directory")
    code, _, err = cli("train", plays, "--out", plays / "run", *FLAGS)
    one_line(code, err, "cannot create the run directory")


def test_an_empty_directory_is_a_fine_place_for_a_new_run(plays, tmp_path, cli, one_line) -> None:
    (tmp_path / "empty").mkdir()
    code, _, _ = cli("train", plays, "--out", tmp_path / "empty", "--max-steps", "3", *FLAGS)
    assert code == 0 and (tmp_path / "empty" / "last").is_dir()


# ----------------------------------------------------------------------------- killed saves


def test_resume_after_a_kill_between_the_two_renames(plays, tmp_path, cli, one_line) -> None:
    run = tmp_path / "run"
    code, _, _ = cli("train", plays, "--out", run, "--max-steps", "10", "--eval-every", "5", *FLAGS)
    assert code == 0
    os.rename(run / "last", run / "last.old")  # the state a kill -9 inside a save leaves
    (run / ".last.k1ll.tmp").mkdir()  # and the temporary of a save killed earlier
    code, out, err = cli("train", "--resume", run, "--max-steps", "15")
    assert code == 0, err
    assert "done: 15 steps" in out
    assert sorted(p.name for p in run.iterdir() if p.name.startswith((".", "last"))) == [
        ".lock",
        "last",
    ]
    meta = json.loads((run / "last" / "config.json").read_text())
    assert meta["step"] == 15


def test_metrics_lines_cut_by_a_kill_do_not_stop_a_resume(plays, tmp_path, cli, one_line) -> None:
    run = tmp_path / "run"
    assert (
        cli("train", plays, "--out", run, "--max-steps", "6", "--eval-every", "3", *FLAGS)[0] == 0
    )
    with (run / "metrics.jsonl").open("a") as f:
        f.write('\n{"step": 3, "lo\n[1, 2]\n{"step": "x"}\n')
    code, _, err = cli("train", "--resume", run, "--max-steps", "9")
    assert code == 0, err
    rows = strict_rows(run / "metrics.jsonl")
    assert [r["step"] for r in rows if "val_bpc" in r] == [3, 6, 9]


def test_resume_with_a_step_budget_after_the_time_budget_ran_out(
    plays, tmp_path, cli, one_line
) -> None:
    run = tmp_path / "run"
    args = ("--out", run, "--max-steps", "6", "--max-time", "1h", "--eval-every", "3")
    assert cli("train", plays, *args, *FLAGS)[0] == 0
    state = json.loads((run / "last" / "trainer_state.json").read_text())
    state["elapsed"] = 3601.0  # as if --max-time had stopped it
    (run / "last" / "trainer_state.json").write_text(json.dumps(state))
    code, _, err = cli("train", "--resume", run, "--max-steps", "12", "--max-time", "1h")
    one_line(code, err, "used its --max-time.*nothing is left to train")
    code, _, err = cli("train", "--resume", run, "--max-steps", "6")
    one_line(code, err, "at step 6 already.*--max-steps")
    code, out, err = cli("train", "--resume", run, "--max-steps", "9")
    assert code == 0 and "done: 9 steps" in out, err
    vals = [r["step"] for r in strict_rows(run / "metrics.jsonl") if "val_bpc" in r]
    assert vals == [3, 6, 9]  # no duplicate line for the resumed step


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: [s], "no valid 'step'"),
        (lambda s: {k: v for k, v in s.items() if k != "fingerprint"}, "no valid 'fingerprint'"),
        (lambda s: {**s, "elapsed": "long"}, "no valid 'elapsed'"),
    ],
)
def test_a_damaged_trainer_state_is_named(plays, tmp_path, cli, one_line, edit, message) -> None:
    run = tmp_path / "run"
    assert cli("train", plays, "--out", run, "--max-steps", "3", *FLAGS)[0] == 0
    path = run / "last" / "trainer_state.json"
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    code, _, err = cli("train", "--resume", run, "--max-steps", "6")
    one_line(code, err, f"resume state is damaged.*{message}")


# ----------------------------------------------------------------------------- divergence


def test_divergence_stops_with_one_line_and_keeps_the_last_good_state(
    plays, tmp_path, cli, one_line, monkeypatch
) -> None:
    train_module = importlib.import_module("nextchar.training.loop")
    sane = train_module.lr_at
    monkeypatch.setattr(
        train_module, "lr_at", lambda step, c, p: sane(step, c, p) if step < 12 else 1e30
    )
    run = tmp_path / "run"
    code, _, err = cli(
        "train", plays, "--out", run, "--max-steps", "40", "--eval-every", "10", *FLAGS
    )
    one_line(
        code, err, r"training diverged at step 1[3-9]: .*lower --lr.*run/last \(step 10\) is kept"
    )
    rows = strict_rows(run / "metrics.jsonl")  # no NaN or Infinity was written
    assert max(r["step"] for r in rows) < 20
    assert json.loads((run / "last" / "config.json").read_text())["step"] == 10
    model, _ = load(run, device="cpu")  # the kept checkpoint is finite and loads
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_run_that_diverges_before_saving_leaves_nothing_behind(plays, tmp_path, cli, one_line):
    run = tmp_path / "run"
    argv = ["train", plays, "--out", run, "--max-steps", "30", "--log-every", "1", *FLAGS]
    code, _, err = cli(*argv, "--lr", "1e30")
    one_line(
        code, err, r"training diverged at step \d+: the training loss is nan.*nothing was saved"
    )
    assert not run.exists()  # so the same --out works on the next try
    code, _, err = cli(*argv, "--lr", "1e-2")
    assert code == 0, err
    assert (run / "last").is_dir()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--lr", "inf"], "--lr must be a finite number"),
        (["--lr", "nan"], "--lr must be a finite number"),
        (["--grad-clip", "nan"], "--grad-clip must be a finite number"),
        (["--dropout", "nan"], "--dropout must be a finite number"),
        (["--max-time", "inf"], "--max-time must be a finite number"),
        (["--seed", str(2**64)], "--seed must be in 0..9223372036854775807"),
        (["--seed", "-1"], "--seed must be in 0"),
        (
            ["--hidden-size", "10000000"],
            r"training a gru 2x10000000 model .* needs about [\d,.]+ GiB",
        ),
    ],
)
def test_bad_numbers_are_refused_before_training(plays, tmp_path, cli, one_line, flags, message):
    code, _, err = cli("train", plays, "--out", tmp_path / "r", "--max-steps", "2", *FLAGS, *flags)
    one_line(code, err, message)


def test_a_model_with_nan_weights_is_refused_everywhere(tmp_path, cli, one_line) -> None:
    tok = CharTokenizer.build(TEXT)
    model = build_model(model_config(vocab_size=tok.vocab_size, hidden_size=8, embedding_dim=4))
    model.head.weight.data[3, 3] = float("inf")
    save_checkpoint(tmp_path / "bad", model, tok)
    for argv in (
        ["eval", tmp_path / "bad", tmp_path / "bad" / "config.json"],
        ["predict", tmp_path / "bad", "ROMEO"],
        ["sample", tmp_path / "bad", "--length", "5"],
        ["neighbors", tmp_path / "bad", "R"],
    ):
        code, out, err = cli(*argv)
        one_line(code, err, "NaN or infinity.*diverged")
        assert "nan" not in out


# ----------------------------------------------------------------------------- data and output


def test_the_character_vocabulary_covers_the_validation_text(tmp_path) -> None:
    # '「' and '」' occur only in the last tenth: the validation part
    path = tmp_path / "ko.txt"
    path.write_text("서울은 대한민국의 수도이다. " * 90 + "그는 「안녕」이라고 말했다. " * 5)
    corpus = load_corpus(TrainConfig(files=(str(path),)))
    assert {"「", "」"} <= set(corpus.tokenizer.vocab)
    assert corpus.val_ids.numel() > 0


def test_short_runs_report_a_real_speed_and_a_quiet_final_evaluation_says_so(
    plays, tmp_path, cli, one_line
) -> None:
    run = tmp_path / "run"
    code, out, _ = cli(
        "train", plays, "--out", run, "--max-steps", "3", "--log-every", "50", *FLAGS
    )
    assert code == 0
    speed = float(out.split(" characters/s")[0].rsplit(" ", 1)[1].replace(",", ""))
    assert speed > 0
    assert "evaluating the best checkpoint on" in out


def test_progress_in_a_log_file_is_lines_not_carriage_returns(
    plays, tmp_path, cli, one_line
) -> None:
    flags = [f for f in FLAGS if f != "--quiet"]
    code, _, err = cli("train", plays, "--out", tmp_path / "run", "--max-steps", "20", *flags)
    assert code == 0
    assert "\r" not in err
    lines = err.splitlines()
    assert 2 <= len(lines) <= 8 and any("20/20" in line for line in lines), err
    # an evaluation bar (erased on a terminal) still ends on its last state in a log
    evals = [line for line in lines if line.startswith(("eval", "final eval"))]
    assert evals and re.search(r"(\d+)/\1 ", evals[-1]), err


def test_nfd_models_say_per_nfd_symbol_not_per_character(tmp_path, cli, one_line) -> None:
    path = tmp_path / "ko.txt"
    path.write_text("서울은 대한민국의 수도이다.\n" * 80)
    run = tmp_path / "run"
    code, out, _ = cli(
        "train", path, "--out", run, "--normalization", "nfd", "--max-steps", "3", *FLAGS
    )
    assert code == 0 and "per NFD symbol" in out
    code, out, _ = cli("eval", run, path)
    assert code == 0
    first, perplexity = (
        out.splitlines()[0],
        next(line for line in out.splitlines() if "perplexity" in line),
    )
    chars = len("서울은 대한민국의 수도이다.\n") * 80 - 1
    assert f"{chars:,} characters predicted" in first and "NFD symbols)" in first
    per_symbol, per_char = (
        float(v) for v in perplexity.replace("(per NFD symbol, ", " ").split()[1:3]
    )
    assert per_char > per_symbol  # a syllable is 2-3 jamo: harder to guess whole
    assert math.isfinite(per_char)


def test_one_writer_per_run_directory(plays, tmp_path, cli, one_line) -> None:
    """While a process writes a run, a second `train --out` into it and a `--resume` of it are
    refused with the holder's PID; once it lets go, the directory is free again."""
    import os

    from nextchar.training.rundir import one_writer

    fresh, run = tmp_path / "fresh", tmp_path / "run"
    code, _, err = cli("train", plays, "--out", run, "--max-steps", "2", *FLAGS)
    assert code == 0, err
    holder = rf"is being written by another nextchar \(process {os.getpid()}\)"
    with one_writer(fresh), one_writer(run):  # live writers: this process, other open files
        code, _, err = cli("train", plays, "--out", fresh, "--max-steps", "2", *FLAGS)
        one_line(code, err, holder)
        code, _, err = cli("train", "--resume", run, "--max-steps", "4")
        one_line(code, err, holder)
    code, _, err = cli("train", plays, "--out", fresh, "--max-steps", "2", *FLAGS)
    assert code == 0, err
    code, _, err = cli("train", "--resume", run, "--max-steps", "4")
    assert code == 0, err


@pytest.mark.slow
def test_a_lock_left_by_kill_9_is_stale(plays, tmp_path, cli, run_process) -> None:
    """Two real processes: the second is refused while the first trains; after `kill -9` the
    lock is gone with its process and the run resumes."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    argv = ["train", str(plays), "--out", str(out), "--max-time", "60", "--eval-every", "5"]
    first = subprocess.Popen(
        [sys.executable, "-m", "nextchar", *argv, *FLAGS],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (out / "last").is_dir() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (out / "last").is_dir(), "the first run saved nothing in a minute"
        code, _, err = cli("train", "--resume", out, "--max-steps", "100")
        assert code == 2 and f"(process {first.pid})" in err, err
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    assert (out / ".lock").read_text().strip() == str(first.pid)  # the file stays, the lock not
    code, _, err = cli("train", "--resume", out, "--max-steps", "30", "--max-time", "120")
    assert code == 0, err


def _edit_json(path, change) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def _edit_blob(path, change) -> None:
    import torch

    blob = torch.load(path, weights_only=True)
    change(blob)
    torch.save(blob, path)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("step", "its step is -5"),
        ("hidden size", "the weights do not fit the model"),
        ("batch size", r"its carried state has shapes \[\(2, 4, 24\)\], the model and batch need"),
        ("optimizer of another run", r"optimizer's exp_avg of parameter \d+ has shape"),
        ("rng", "its random state cannot be restored"),
        ("carry", "its carried state is not a list of tensors"),
    ],
)
def test_resume_checks_last_against_the_run_first(plays, tmp_path, cli, one_line, damage, message):
    """Each part of last/ is checked against the run and itself before any step: one line
    that names it, never a traceback or a run that trains on from nonsense."""
    import torch

    run, last = tmp_path / "run", tmp_path / "run" / "last"
    assert cli("train", plays, "--out", run, "--max-steps", "3", *FLAGS)[0] == 0
    if damage == "step":
        _edit_json(last / "trainer_state.json", lambda s: {**s, "step": -5})
    elif damage == "hidden size":
        _edit_json(last / "config.json", lambda m: {**m, "model": {**m["model"], "hidden_size": 8}})
    elif damage == "batch size":
        _edit_json(last / "config.json", lambda m: {**m, "train": {**m["train"], "batch_size": 2}})
    elif damage == "optimizer of another run":
        other = tmp_path / "other"
        wide = [f if f != "24" else "40" for f in FLAGS]  # the hidden size
        assert cli("train", plays, "--out", other, "--max-steps", "3", *wide)[0] == 0
        theirs = torch.load(other / "last" / "optimizer.pt", weights_only=True)["optimizer"]
        _edit_blob(last / "optimizer.pt", lambda b: b.update(optimizer=theirs))
    elif damage == "rng":
        _edit_blob(last / "optimizer.pt", lambda b: b.update(rng_cpu_ranks=[torch.zeros(3)]))
    else:
        _edit_blob(last / "optimizer.pt", lambda b: b.update(carry={"h": 1}))
    code, _, err = cli("train", "--resume", run, "--max-steps", "6")
    one_line(code, err, message)
    metrics = (run / "metrics.jsonl").read_text()
    assert '"step": 3' in metrics  # the history stays


# ----------------------------------------------------------------------------- I/O faults


def test_a_full_disk_during_training_is_one_line_and_keeps_the_checkpoints(
    plays, tmp_path, cli, one_line, monkeypatch
) -> None:
    """The disk fills up after the first save (torch.save says 'unexpected pos', as it does
    on a full disk): one line naming the checkpoint and what to do; last/ still resumes."""
    import torch

    run = tmp_path / "run"
    saves = {"n": 0}
    real_save = torch.save

    def save_until_full(obj, f, *args, **kwargs):
        saves["n"] += 1
        if saves["n"] > 1:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_full)
    code, _, err = cli(
        "train", plays, "--out", run, "--max-steps", "6", "--eval-every", "3", *FLAGS
    )
    one_line(code, err, r"run/last: the disk is full: free some space")
    monkeypatch.setattr(torch, "save", real_save)
    assert not list(run.glob(".last.*.tmp"))  # the half-written save is gone
    code, out, err = cli("train", "--resume", run, "--max-steps", "6")
    assert code == 0 and "done: 6 steps" in out, err


def _pages(folder) -> int:
    """Bytes `folder`'s files take on a tmpfs: whole 4 KiB pages."""
    return sum(-(-p.stat().st_size // 4096) * 4096 for p in folder.rglob("*") if p.is_file())


@pytest.mark.slow
def test_a_real_full_disk_is_one_line_and_keeps_the_checkpoints(plays, tmp_path, cli) -> None:
    """A tmpfs with room for one save but not two (a save writes beside the old one): where
    the machine lets a test mount one (root, or a user namespace), else the injected ENOSPC
    above stands alone."""
    import shutil
    import subprocess
    import sys

    if shutil.which("unshare") is None or shutil.which("mount") is None:
        pytest.skip("no unshare/mount here to make a small disk")
    sized = tmp_path / "sized"  # how much one save takes, measured on this machine
    assert cli("train", plays, "--out", sized, "--max-steps", "3", "--eval-every", "3",
               *FLAGS)[0] == 0  # fmt: skip
    size = _pages(sized) + _pages(sized / "last") // 2 + 8192
    disk = tmp_path / "disk"
    disk.mkdir()
    flags = " ".join(FLAGS)
    script = f"""
mount -t tmpfs -o size={size} tmpfs {disk} || exit 99
cd {tmp_path}
{sys.executable} -m nextchar train plays.txt --out {disk}/run --max-steps 9 --eval-every 3 \
  {flags} 2>err.txt
echo "rc=$?"
{sys.executable} -c "
import json; from nextchar.models import load
load('{disk}/run/last', device='cpu')
print('last/ loads at step', json.load(open('{disk}/run/last/trainer_state.json'))['step'])
print('temporaries', len(list(__import__('pathlib').Path('{disk}/run').glob('.*.tmp'))))
"
"""
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True)
    if done.returncode == 99 or "unshare:" in done.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()[:200]}")
    err = (tmp_path / "err.txt").read_text()
    assert "rc=2" in done.stdout, (done.stdout, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert re.search(r"disk/run/(last|best): the disk is full: free some space", err), err
    assert re.search(r"last/ loads at step [36]\b", done.stdout), done.stdout
    assert "temporaries 0" in done.stdout


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (PermissionError(13, "Permission denied"), "plays.txt: permission denied"),
        (FileNotFoundError(2, "No such file or directory"), r"plays.txt: no such file .*deleted"),
        (IsADirectoryError(21, "Is a directory"), "plays.txt: a directory stands where"),
    ],
)
def test_a_training_file_that_cannot_be_read_is_one_line(
    plays, tmp_path, cli, one_line, monkeypatch, error, message
) -> None:
    from pathlib import Path

    def refuse(self):
        error.filename = str(self)
        raise error

    monkeypatch.setattr(Path, "read_bytes", refuse)
    code, _, err = cli("train", plays, "--out", tmp_path / "run", "--max-steps", "2", *FLAGS)
    one_line(code, err, message)
    assert not (tmp_path / "run").exists()  # nothing left behind


def test_a_pipe_or_device_is_not_read_as_a_text(tmp_path, cli, one_line) -> None:
    import os

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for source in (fifo, "/dev/zero"):
        code, _, err = cli("train", source, "--max-steps", "2", *FLAGS)
        one_line(code, err, "is not a regular file")


@pytest.mark.parametrize("encoding", ["undefined", "punycode"])
def test_an_encoding_that_cannot_decode_is_one_line(plays, cli, one_line, encoding) -> None:
    code, _, err = cli("train", plays, "--encoding", encoding, "--max-steps", "2", *FLAGS)
    one_line(code, err, rf"plays.txt cannot be read as {encoding} .*--encoding")


def test_printing_to_a_full_stdout_is_quiet_and_not_zero(tmp_path) -> None:
    import os
    import subprocess
    import sys

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "nextchar", "corpora"], stdout=full, stderr=subprocess.PIPE,
            text=True, timeout=120,
        )  # fmt: skip
    assert proc.returncode != 0 and proc.stderr == "", proc.stderr


def test_damaged_onnx_metadata_and_short_texts_are_one_line(plays, tmp_path, cli, one_line):
    """Edited ONNX metadata (not JSON, a key gone, a vocabulary shorter than the outputs), a
    one-character text and dynamic evaluation's step past float32: one line each."""
    import onnx

    (tmp_path / "one.txt").write_text("a")
    code, _, err = cli("train", tmp_path / "one.txt", "--max-steps", "2", *FLAGS)
    one_line(code, err, "has 1 character.*too few to hold out --val-fraction")
    run = tmp_path / "run"
    assert cli("train", plays, "--out", run, "--max-steps", "2", *FLAGS)[0] == 0
    code, _, err = cli("eval", run, plays, "--dynamic", "--dynamic-lr", "1e308")
    one_line(code, err, "--dynamic-lr must be <= 1")
    exported = tmp_path / "m.onnx"
    assert cli("export", run, exported)[0] == 0
    original = onnx.load(str(exported))
    info = json.loads(original.metadata_props[0].value)
    edits = {
        "not json": "{nope",
        "no model": json.dumps({k: v for k, v in info.items() if k != "model"}),
        "short vocabulary": json.dumps(
            {**info, "tokenizer": {**info["tokenizer"], "vocab": info["tokenizer"]["vocab"][:3]}}
        ),
    }
    for name, value in edits.items():
        original.metadata_props[0].value = value
        onnx.save(original, str(tmp_path / f"{name}.onnx"))
        code, _, err = cli("sample", tmp_path / f"{name}.onnx", "--length", "5")
        one_line(code, err, r"m?\.onnx: its (nextchar metadata|tokenizer)")


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "korean", "--cell", "minlstm", "--hidden-size", "30000", "--embedding-dim",
         "30000", "--max-steps", "1"],
        ["experiment", "long-range", "--distances", "1000000"],
    ],
)  # fmt: skip
def test_work_that_cannot_fit_the_memory_is_refused_before_it_starts(cli, one_line, argv):
    """Linux overcommits: past the memory, the kernel kills the process later with no word.
    The peak is estimated first (on the meta device) and refused in one line."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code, _, err = cli(*argv, "--device", "cpu")
    one_line(code, err, r"needs about [\d,.]+ GiB and [\d,.]+ GiB are free; choose smaller")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500 * 1024  # KiB


def test_a_large_text_says_it_is_being_read(plays, tmp_path, cli, monkeypatch) -> None:
    import nextchar.training.opening as opening

    monkeypatch.setattr(opening, "LARGE_TEXT", 100)  # the play is a few kB: "large" here
    code, out, err = cli("train", plays, "--out", tmp_path / "run", "--max-steps", "2", *FLAGS)
    assert code == 0, err
    assert out.splitlines()[0].startswith("reading and encoding 0 MB of text")
