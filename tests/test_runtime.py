"""The thread policy and the dynamo-free optimizers (runtime.py, optim.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from nextchar.core import runtime
from nextchar.core.config import TrainConfig
from nextchar.core.errors import NextcharError
from nextchar.core.optim import Adam, AdamW
from nextchar.core.runtime import ThreadTuner, threads_for_small_work, user_threads


def test_user_threads_flag_then_environment(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(runtime, "cpu_cores", lambda: 8)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert user_threads() is None
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert user_threads() == 3
    assert user_threads(5) == 5  # the flag wins
    # more than the cores: capped, said once
    monkeypatch.setenv("OMP_NUM_THREADS", "10000")
    assert user_threads() == user_threads() == 8
    said = capsys.readouterr().err.splitlines()
    assert said == ["nextchar: OMP_NUM_THREADS=10000 is more than the 8 core(s) here: using 8"]
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")
    assert user_threads() is None  # not a count: the policy chooses
    with pytest.raises(NextcharError, match="threads must be >= 1"):  # checked where given
        TrainConfig(threads=0)


def test_small_work_runs_on_one_thread_and_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    with threads_for_small_work():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def drive(tuner: ThreadTuner, clock: FakeClock, cost: dict[int, float], steps: int) -> list[int]:
    """Feed the tuner steps whose time depends on the thread count it set."""
    seen = []
    for _ in range(steps):
        threads = torch.get_num_threads()
        seen.append(threads)
        clock.now += cost[threads]
        tuner.record(cost[threads])
    return seen


def test_tuner_climbs_when_it_pays_and_falls_back_when_a_core_is_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(runtime, "cpu_cores", lambda: 4)
    clock = FakeClock()
    monkeypatch.setattr(runtime.time, "perf_counter", clock)
    before = torch.get_num_threads()
    tuner = ThreadTuner(every=30.0)
    assert torch.get_num_threads() == 1  # safe on a busy machine
    quiet = {1: 1.0, 2: 0.6, 4: 0.4}
    seen = drive(tuner, clock, quiet, 30)
    assert seen[0] == 1 and seen[-1] == 4  # climbed 1 -> 2 -> 4 within a few steps
    assert seen.index(4) < 15
    busy = {1: 1.0, 2: 3.0, 4: 9.0}  # another program: teams wait for descheduled threads
    seen = drive(tuner, clock, busy, 60)
    assert seen[-1] == 1
    # after the fall, trials back up are rare and short: few steps pay the cliff
    late = seen[seen.index(1) :]
    assert sum(t > 1 for t in late) <= 3
    tuner.close()
    assert torch.get_num_threads() == before


def test_tuner_ignores_a_passing_disturbance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(runtime, "cpu_cores", lambda: 2)
    clock = FakeClock()
    monkeypatch.setattr(runtime.time, "perf_counter", clock)
    tuner = ThreadTuner()
    times = iter([1.0, 1.0, 1.0, 1.0, 1.0, 0.6, 5.0, 0.6, 0.6] + [0.6] * 40)
    for _ in range(40):
        seconds = next(times)
        clock.now += seconds
        tuner.record(seconds)
    assert torch.get_num_threads() == 2  # one slow step among fast ones did not count
    tuner.close()


def test_tuner_leaves_a_fixed_count_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "cpu_cores", lambda: 2)
    clock = FakeClock()
    monkeypatch.setattr(runtime.time, "perf_counter", clock)
    tuner = ThreadTuner(threads=1)
    assert set(drive(tuner, clock, {1: 1.0, 2: 0.1}, 20)) == {1}  # never above the user's
    tuner.close()


@pytest.mark.parametrize("given", ["flag", "env"])
def test_a_fixed_count_that_collapses_is_left_with_one_line(monkeypatch, capsys, given) -> None:
    monkeypatch.setattr(runtime, "cpu_cores", lambda: 2)
    monkeypatch.setattr(runtime, "_said", set())
    clock = FakeClock()
    monkeypatch.setattr(runtime.time, "perf_counter", clock)
    if given == "env":
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
    threads = 2 if given == "flag" else None
    # a little faster on fewer threads is no collapse: the user's count stays
    tuner = ThreadTuner(threads=threads, every=30.0)
    seen = drive(tuner, clock, {1: 0.8, 2: 1.0}, 40)
    assert tuner.current == 2 and seen.count(2) > 30 and capsys.readouterr().err == ""
    tuner.close()
    # a busy neighbour: 2 threads wait at every barrier for the descheduled one
    tuner = ThreadTuner(threads=threads, every=30.0)
    seen = drive(tuner, clock, {1: 1.0, 2: 6.0}, 40)
    assert seen[0] == 2 and tuner.current == 1 and seen.index(1) < 10 and seen.count(2) < 12
    err = capsys.readouterr().err
    source = "threads=2" if given == "flag" else "OMP_NUM_THREADS=2"  # (--threads 2 on a CLI)
    assert err.count("\n") == 1 and f"{source}: 2 threads run 6.0x slower than 1 now" in err
    assert "keep_threads keeps 2" in err  # (on the command line: --keep-threads)
    drive(tuner, clock, {1: 1.0, 2: 0.6}, 400)  # the neighbour left: back up
    assert tuner.current == 2 and capsys.readouterr().err == ""
    tuner.close()
    keeping = runtime.KEEP_THREADS.set(True)  # a run with keep_threads: never left
    try:
        kept = ThreadTuner(threads=threads)
        assert set(drive(kept, clock, {1: 1.0, 2: 6.0}, 40)) == {2}
        kept.close()
    finally:
        runtime.KEEP_THREADS.reset(keeping)


@pytest.mark.parametrize(("ours", "theirs"), [(Adam, torch.optim.Adam), (AdamW, torch.optim.AdamW)])
def test_optimizers_step_exactly_as_torch(ours: type, theirs: type) -> None:
    results = []
    for cls in (ours, theirs):
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 3)
        opt = cls(model.parameters(), lr=0.1, weight_decay=0.01)
        for _ in range(3):
            loss = model(torch.randn(8, 4)).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        results.append((model.weight.detach().clone(), opt.state_dict()))
    assert torch.equal(results[0][0], results[1][0])
    restored = theirs(torch.nn.Linear(4, 3).parameters(), lr=0.1)
    restored.load_state_dict(results[0][1])  # torch loads ours


def test_training_steps_never_import_dynamo() -> None:
    code = (
        "import sys, torch\n"
        "from nextchar.core.optim import AdamW\n"
        "m = torch.nn.Linear(2, 2); o = AdamW(m.parameters())\n"
        "m(torch.ones(1, 2)).sum().backward(); o.step(); o.zero_grad(); o.state_dict()\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_per_step_tuner_holds_its_count_only_inside_a_step(monkeypatch) -> None:
    """Generation: each token runs on the tuner's count and the consumer between tokens keeps
    its own; the steps' times still move the tuner (here to 2 threads, which pay)."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(runtime, "cpu_cores", lambda: 2)
    clock = FakeClock()
    monkeypatch.setattr(runtime.time, "perf_counter", clock)
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        tuner = ThreadTuner(per_step=True)
        inside = []
        for _ in range(30):
            assert torch.get_num_threads() == 3  # the consumer's count, untouched
            with tuner.step():
                inside.append(torch.get_num_threads())
                clock.now += {1: 1.0, 2: 0.5}[inside[-1]]
        assert inside[0] == 1 and inside[-1] == 2
    finally:
        torch.set_num_threads(before)
