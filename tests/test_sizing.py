"""Sizing a time-budgeted run to the machine: the table's interpolation, the choice from
measured speeds, the warm-up sized to the run, and the command line's one line."""

import json
import math

import pytest
import torch

from nextchar.core.config import TrainConfig, model_config
from nextchar.training import sizing
from nextchar.training.loop import lr_at
from nextchar.training.plan import plan_run


def candidate(hidden: int, points) -> dict:
    return {
        "model": {"cell": "gru", "num_layers": 1, "hidden_size": hidden},
        "train": {"batch_size": 4, "seq_len": 16},
        "points": points,
    }


# A small model learns fast and stops; a large one starts slower and goes lower.
TABLE = [
    candidate(8, [[1e3, 3.0], [1e5, 2.5], [1e7, 2.4]]),
    candidate(32, [[1e3, 3.4], [1e5, 2.6], [1e7, 2.0]]),
]


@pytest.fixture
def table(tmp_path, monkeypatch):
    path = tmp_path / "sizing.json"
    path.write_text(json.dumps({"candidates": TABLE}))
    monkeypatch.setattr(sizing, "TABLE", path)
    return path


def test_the_table_is_joined_by_lines_in_log_characters(table) -> None:
    small, large = sizing.candidates(table)
    assert small.bpc_at(1e5) == pytest.approx(2.5)
    assert small.bpc_at(1e4) == pytest.approx(2.75)  # halfway in log between 1e3 and 1e5
    assert large.bpc_at(1e9) == pytest.approx(2.0 - 0.6 * sizing.BEYOND)  # flattening
    assert large.bpc_at(10) == pytest.approx(4.2)  # and the first
    assert small.name() == "gru 1x8 b4"


def test_the_shipped_table_ranks_shapes_by_what_they_reach() -> None:
    from pathlib import Path

    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    assert '"training/sizing.json"' in pyproject.split("[tool.setuptools.package-data]")[1]
    shipped = sizing.candidates()
    assert len(shipped) >= 3
    for c in shipped:
        chars = [p[0] for p in c.points]
        assert chars == sorted(chars) and all(b > 0 for _, b in c.points)
        model_config(**c.model)  # every candidate is a valid shape
        TrainConfig(**c.train)
        bpcs = [b for _, b in c.points]
        assert bpcs == sorted(bpcs, reverse=True)  # more characters, fewer bits


@pytest.mark.parametrize(
    ("seconds", "speeds", "chosen"),
    [
        (10, {8: 100.0, 32: 50.0}, 8),  # few characters: the small one
        (10**5, {8: 100.0, 32: 50.0}, 32),  # many: the large one, though slower
        (10**5, {8: 100.0, 32: 1e-3}, 8),  # the large one hardly runs here
    ],
)
def test_the_choice_is_the_lowest_predicted_bpc(table, monkeypatch, seconds, speeds, chosen):
    monkeypatch.setattr(
        sizing, "step_speed", lambda m, t, ids, device, give_up=None: speeds[m.hidden_size]
    )
    lines: list[str] = []
    model, config = sizing.size_to_budget(
        model_config(vocab_size=10),
        TrainConfig(max_steps=None, max_time=seconds),
        torch.arange(1000) % 10,
        torch.device("cpu"),
        seconds,
        lines.append,
        choose=True,
    )
    assert model.hidden_size == chosen and model.num_layers == 1 and config.batch_size == 4
    steps = speeds[chosen] * seconds * sizing.TRAIN_SHARE / (4 * 16)
    assert config.warmup_steps == min(100, max(1, int(steps) // 10))
    (line,) = lines
    assert line.startswith(f"sized to this machine and {seconds} s: gru 1x{chosen} b4")
    assert "warm-up" in line and "fix the shape" in line


def test_a_given_shape_is_kept_and_only_the_warm_up_is_sized(table, monkeypatch) -> None:
    monkeypatch.setattr(sizing, "step_speed", lambda *a: 640.0)  # 10 steps of 4 x 16 a second
    lines: list[str] = []
    given = model_config(vocab_size=10, hidden_size=5)
    model, config = sizing.size_to_budget(
        given, TrainConfig(max_steps=None, max_time=100, batch_size=4, seq_len=16),
        torch.arange(1000) % 10, torch.device("cpu"), 100.0, lines.append, choose=False,
    )  # fmt: skip
    assert model == given and lines == []
    assert config.warmup_steps == int(10 * 100 * sizing.TRAIN_SHARE) // 10


def test_step_speed_measures_real_steps() -> None:
    ids = torch.arange(2000) % 10
    speed = sizing.step_speed(
        model_config(vocab_size=10, hidden_size=8, embedding_dim=4),
        TrainConfig(batch_size=4),
        ids,
        torch.device("cpu"),
    )
    assert math.isfinite(speed) and speed > 0


@pytest.mark.parametrize(
    ("model_flags", "train_flags", "sized"),
    [
        ({}, {"max_time": 60}, True),
        ({"hidden_size": 64}, {"max_time": 60}, False),
        ({}, {"max_time": 60, "batch_size": 8}, False),
        ({}, {"max_time": 60, "max_steps": 100}, False),
        ({}, {"max_steps": 100}, False),
        ({"kind": "gpt2"}, {"max_time": 60}, False),
        ({}, {"max_time": 60, "tokenizer": "word"}, False),
        ({}, {"max_time": 60, "lr": 0.01}, True),  # not a shape
    ],
)
def test_only_a_time_budget_without_shape_flags_sizes_itself(model_flags, train_flags, sized):
    plan = plan_run(["shakespeare"], model_flags, train_flags)
    assert plan.train.size_to_machine is sized


@pytest.mark.parametrize(
    ("model_flags", "train_flags", "budget", "sized"),
    [
        ({}, {}, (None, 480.0), True),  # the default: 8 minutes, sized
        ({"cell": "lstm"}, {}, (None, 480.0), False),  # 8 minutes of the shape given
        ({}, {"max_steps": 300}, (300, None), False),
        ({}, {"max_time": 60}, (None, 60), True),
        ({}, {"tokenizer": "word"}, (1000, None), False),  # the word preset's own
    ],
)
def test_a_run_given_no_budget_gets_eight_minutes(model_flags, train_flags, budget, sized):
    plan = plan_run(["shakespeare"], model_flags, train_flags)
    assert (plan.train.max_steps, plan.train.max_time) == budget
    assert plan.train.size_to_machine is sized


def test_the_warm_up_is_at_most_a_tenth_of_a_step_budget() -> None:
    short = TrainConfig(max_steps=50, warmup_steps=100, lr=1.0, min_lr_ratio=0.0)
    assert lr_at(4, short, 0.0) == pytest.approx(1.0)  # 5 warm-up steps, then the peak
    assert lr_at(0, short, 0.0) == pytest.approx(0.2)
    long = TrainConfig(max_steps=5000, warmup_steps=100, lr=1.0)
    assert lr_at(49, long, 0.0) == pytest.approx(0.5)  # the given 100 steps


def test_a_timed_run_says_its_choice_and_records_it(table, tmp_path, cli, monkeypatch) -> None:
    from conftest import plays

    (tmp_path / "plays.txt").write_text(plays(60))
    monkeypatch.setattr(sizing, "TRAIN_SHARE", 1e-3)  # as if the budget were tiny: the small
    done = cli(
        "train", "plays.txt", "--max-time", "3", "--quiet", "--out", "run", "--device", "cpu",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "sized to this machine and" in done.stdout and "gru 1x8 b4" in done.stdout
    meta = json.loads((tmp_path / "run" / "best" / "config.json").read_text())
    assert meta["model"]["hidden_size"] == 8 and meta["train"]["batch_size"] == 4
    assert meta["train"]["size_to_machine"] is True


@pytest.mark.parametrize(
    ("rates", "best"), [({1: 100.0, 2: 150.0}, (150.0, 2)), ({1: 100.0, 2: 20.0}, (100.0, 1))]
)
def test_each_shape_is_timed_at_its_faster_thread_count(monkeypatch, rates, best) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(sizing, "cpu_cores", lambda: 2)
    limits = []

    def fake(m, t, ids, device, give_up=None):
        limits.append(give_up)
        return rates[torch.get_num_threads()]

    monkeypatch.setattr(sizing, "step_speed", fake)
    before = torch.get_num_threads()
    config = TrainConfig(batch_size=4)
    assert sizing.best_speed(model_config(vocab_size=10), config, None, torch.device("cpu")) == best
    # one thread first; all cores given up on past twice one thread's step time
    assert limits == [None, pytest.approx(2 * 4 * sizing.PROBE_LEN / 100.0)]
    assert torch.get_num_threads() == before
