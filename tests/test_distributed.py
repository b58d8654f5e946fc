"""Training over several processes (`train --processes`, or torchrun; DistributedDataParallel,
gloo on the CPU): two processes with half the batch each must follow one process with the
whole batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import in_process
from nextchar.text.data import Batches
from nextchar.training.distributed import Group

TEXT = "".join(
    f"{who}: line {i}, my lord, the {thing} is {state}.\n"
    for i, (who, thing, state) in enumerate(
        [("ROMEO", "night", "young"), ("JULIET", "rose", "sweet"), ("NURSE", "hour", "late")] * 60
    )
)
# a small model and batch 8 = 2 processes x 4 rows; dropout 0 so the two runs are comparable
FLAGS = [
    "--cell", "lstm", "--hidden-size", "32", "--num-layers", "2",
    "--batch-size", "8", "--seq-len", "16",
    "--eval-every", "4", "--log-every", "2", "--device", "cpu", "--quiet",
    "--schedule", "constant", "--warmup-steps", "0", "--lr", "1e-2",
]  # fmt: skip
TOLERANCE = 1e-4  # absolute, on losses in nats: float sums in another order, nothing more


def torchrun(*args: str, cwd: Path, processes: int = 2) -> subprocess.CompletedProcess[str]:
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes)]
    return subprocess.run(
        [sys.executable, *launcher, "-m", "nextchar", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONIOENCODING": "utf-8", "OMP_NUM_THREADS": "1"},
    )


def launched(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`nextchar train --processes 2`: nextchar's own launcher, in a child of its own."""
    return subprocess.run(
        [sys.executable, "-m", "nextchar", *args, "--processes", "2"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )


def single(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The same training in one process: main(argv) in this one."""
    return in_process(*args, cwd=cwd)


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def assert_runs_track(a: Path, b: Path) -> None:
    ra, rb = rows(a), rows(b)
    assert [(r["step"], "loss" in r) for r in ra] == [(r["step"], "loss" in r) for r in rb]
    for x, y in zip(ra, rb, strict=True):
        key = "loss" if "loss" in x else "val_bpc"
        assert abs(x[key] - y[key]) < TOLERANCE, (x, y)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    (root / "plays.txt").write_text(TEXT)
    two = launched("train", "plays.txt", "--out", "two", "--max-steps", "12", *FLAGS, cwd=root)
    one = single("train", "plays.txt", "--out", "one", "--max-steps", "12", *FLAGS, cwd=root)
    assert two.returncode == 0, two.stderr[-3000:]
    assert one.returncode == 0, one.stderr
    return root, two, one


@pytest.mark.slow
def test_two_processes_follow_one_process_with_the_whole_batch(runs) -> None:
    root, _, _ = runs
    assert_runs_track(root / "two", root / "one")
    # the losses are not trivially equal by accident: training moved them
    losses = [r["loss"] for r in rows(root / "two") if "loss" in r]
    assert losses[-1] < losses[0] - 0.3


@pytest.mark.slow
def test_only_rank_zero_reports_and_writes(runs) -> None:
    root, two, _ = runs
    assert two.stdout.count("done: 12 steps") == 1
    assert sorted(p.name for p in (root / "two").iterdir()) == [
        ".lock",  # rank 0's alone
        "best",
        "curves.png",
        "last",
        "metrics.jsonl",
    ]
    steps = [r["step"] for r in rows(root / "two") if "loss" in r]
    assert steps == sorted(set(steps))  # one writer: no line twice
    # the carried state is saved whole ([layers, global batch, hidden]), as one process has it
    saved = torch.load(root / "two" / "last" / "optimizer.pt", weights_only=True)
    assert [tuple(t.shape) for t in saved["carry"]] == [(2, 8, 32), (2, 8, 32)]
    assert len(saved["rng_cpu_ranks"]) == 2


@pytest.mark.slow
def test_resume_under_torchrun_and_in_one_process(runs) -> None:
    root, _, _ = runs
    ref = single("train", "plays.txt", "--out", "ref", "--max-steps", "20", *FLAGS, cwd=root)
    assert ref.returncode == 0, ref.stderr
    for name, processes in (("two_more", 2), ("one_more", 1)):
        subprocess.run(["cp", "-r", str(root / "two"), str(root / name)], check=True)
        more = torchrun(
            "train", "--resume", name, "--max-steps", "20", cwd=root, processes=processes
        )
        assert more.returncode == 0, more.stderr[-3000:]
        assert_runs_track(root / name, root / "ref")


@pytest.mark.slow
def test_a_batch_that_does_not_split_is_refused(tmp_path) -> None:
    (tmp_path / "plays.txt").write_text(TEXT)
    flags = [f if f != "8" else "7" for f in FLAGS]
    proc = torchrun("train", "plays.txt", "--max-steps", "2", *flags, cwd=tmp_path)
    assert proc.returncode != 0
    said = "--batch-size 7 is the global batch, split over 2 processes"
    assert proc.stderr.count(said) == 1  # rank 0 alone says it


def test_the_launcher_checks_the_flags_before_any_process_starts(tmp_path, cli, one_line) -> None:
    (tmp_path / "plays.txt").write_text(TEXT)
    flags = [f if f != "8" else "7" for f in FLAGS]
    code, _, err = cli("train", "plays.txt", "--processes", "2", *flags, cwd=tmp_path)
    one_line(code, err, "--batch-size 7 is the global batch, split over 2 processes")
    code, _, err = cli("train", "plays.txt", "--processes", "2", "--lr", "-1", cwd=tmp_path)
    one_line(code, err, "--lr must be > 0")
    assert list(tmp_path.iterdir()) == [tmp_path / "plays.txt"]


@pytest.mark.slow
def test_a_failure_in_the_launched_processes_is_one_line(tmp_path) -> None:
    (tmp_path / "one.txt").write_text("a")  # read, and refused, in the processes themselves
    proc = launched("train", "one.txt", "--device", "cpu", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "nextchar train: error: the training text in one.txt has 1 character(s): too few to "
        "hold out --val-fraction 0.1 for validation; give more text, or a --val-file"
    ]  # rank 0's line alone: no second rank, no launcher report


@pytest.mark.parametrize("mode", ["streams", "random"])
def test_the_ranks_rows_make_up_the_global_batch(mode) -> None:
    data = torch.arange(1000) % 251
    whole = Batches(data, 6, 10, mode, seed=3)
    for step in (0, 1, 7):
        parts = [
            Batches(data, 6, 10, mode, seed=3, rows=Group(r, 3).rows(6)).get(step) for r in range(3)
        ]
        x, y = whole.get(step)
        assert torch.equal(torch.cat([p[0] for p in parts]), x)
        assert torch.equal(torch.cat([p[1] for p in parts]), y)
        assert all(p[0].shape == (2, 10) for p in parts)


@pytest.mark.cuda
def test_torchrun_on_one_gpu_runs_ddp_over_nccl_and_tracks_one_process(tmp_path) -> None:
    (tmp_path / "plays.txt").write_text(TEXT)
    flags = [f if f != "cpu" else "cuda" for f in FLAGS] + ["--precision", "fp32"]
    ddp = torchrun("train", "plays.txt", "--out", "ddp", "--max-steps", "12", *flags,
                   cwd=tmp_path, processes=1)  # fmt: skip
    one = single("train", "plays.txt", "--out", "one", "--max-steps", "12", *flags, cwd=tmp_path)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert one.returncode == 0, one.stderr
    assert_runs_track(tmp_path / "ddp", tmp_path / "one")


def test_torchrun_with_one_process_still_forms_a_group(monkeypatch) -> None:
    from nextchar.training.distributed import from_env

    for key, value in {"RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "localhost"}.items():
        monkeypatch.setenv(key, value)
    assert from_env().enabled and from_env().is_main
    monkeypatch.delenv("MASTER_ADDR")
    assert not from_env().enabled  # variables without a launcher: one plain process
