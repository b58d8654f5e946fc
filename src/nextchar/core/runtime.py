"""Where the code runs and how: device choice (cuda > mps > cpu), precision, seeding and the
CPU thread policy live here and nowhere else.

Threads. A CPU step of a small model is a few small matrix products: a thread team costs more
than it saves, and beside one busy process on two cores it falls off a cliff (each OpenMP
barrier waits for the descheduled team member). So tiny work (the lab, sampling one token at a
time) runs on one thread, and a training or evaluation loop times its own steps with a
`ThreadTuner`, which moves between 1 thread and all cores when another count is faster -- as
when another program takes a core (bench/contention.py measures both). `OMP_NUM_THREADS` or
`threads` fix the count instead, left only for a collapse (`keep_threads` insists). A
passive OpenMP wait policy is far worse: every one of a
step's thousands of small parallel regions then waits for a sleeping thread to wake.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import time
from collections.abc import Iterator

import torch

from nextchar.core.config import DEVICE_CHOICES
from nextchar.core.errors import NextcharError
from nextchar.core.options import flag


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def pick_device(name: str = "auto") -> torch.device:
    """Resolve a device name; `auto` prefers cuda, then mps, then cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise NextcharError(
                f"{flag('device', name)} was asked for but this PyTorch sees no CUDA GPU; "
                f"use {flag('device', 'cpu')} (or auto), or install a CUDA build of torch "
                "(see docs/gpu.md)"
            )
        return torch.device(name)
    if name == "mps":
        if not _mps_available():
            raise NextcharError(
                f"{flag('device')} mps was asked for but MPS is not available here; use "
                f"{flag('device', 'cpu')} or auto"
            )
        return torch.device("mps")
    raise NextcharError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")


def cpu_bf16_supported() -> bool:
    """Whether this CPU runs oneDNN's bf16 kernels (AVX-512 BW/VL/DQ or newer). Without them
    (an AVX2-only CPU) the bf16 LSTM primitive cannot even be created, and bf16 elsewhere is
    emulated and slow."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch without the probe: assume the worst
        return False


def autocast_for(
    precision: str, device: torch.device, preferred: str = "fp32"
) -> contextlib.AbstractContextManager:
    """The mixed-precision context of a training step. `auto` is the model's
    `preferred_precision(device)`: what measured fastest at the same validation bpc
    (bench/precision.py)."""
    if precision == "auto":
        precision = preferred
    if precision == "fp32":
        return contextlib.nullcontext()
    if device.type == "cuda":
        if not torch.cuda.is_bf16_supported():
            raise NextcharError(
                f"{flag('precision', 'bf16')} needs a GPU with bf16 support "
                f"({torch.cuda.get_device_name()} "
                f"has none): use {flag('precision', 'fp32')} or auto"
            )
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if device.type == "cpu":
        if not cpu_bf16_supported():
            raise NextcharError(
                f"{flag('precision', 'bf16')} on the CPU needs oneDNN's bf16 kernels (a CPU "
                "with AVX-512 "
                f"or AMX); this one has neither: use {flag('precision', 'fp32')} (or auto)"
            )
        return torch.autocast("cpu", dtype=torch.bfloat16)
    raise NextcharError(f"{flag('precision', 'bf16')} runs on CUDA or the CPU, not {device.type}")


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global generators (CPU and every CUDA device) and return a CPU generator
    with the same seed for code that wants an explicit one."""
    torch.manual_seed(seed)  # also seeds all CUDA devices
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def user_threads(threads: int | None = None) -> int | None:
    """The thread count the user fixed: `threads`, else OMP_NUM_THREADS; None lets the
    policy choose. More threads than cores only wait for each other: the count is capped at
    the cores, with one line that says so."""
    if threads is None:  # a given count was validated where it was given (the configs)
        value = os.environ.get("OMP_NUM_THREADS", "").strip()
        if not (value.isdigit() and int(value) > 0):
            return None
        threads, source = int(value), f"OMP_NUM_THREADS={value}"
    else:
        source = f"{flag('threads', threads)}"
    cores = cpu_cores()
    if threads > cores:
        _say_once(f"nextchar: {source} is more than the {cores} core(s) here: using {cores}")
        return cores
    return threads


_said: set[str] = set()


def _say_once(line: str, about: str | None = None) -> None:
    """Print `line` once per process (or once per `about`: the same news in other numbers)."""
    key = about or line
    if key not in _said:
        _said.add(key)
        print(line, file=sys.stderr, flush=True)


# Whether a thread count the user fixed is kept even through a collapse: set for the length
# of a training run (`keep_threads`), so its evaluations keep it too.
KEEP_THREADS: contextvars.ContextVar[bool] = contextvars.ContextVar("keep_threads", default=False)


def cpu_cores() -> int:
    """Cores this process may run on (its affinity mask, not the whole machine)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def threads_for_small_work(threads: int | None = None) -> Iterator[None]:
    """One intra-op thread (or the user's count) for work made of tiny operations -- the lab,
    a token at a time -- and the previous count restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(user_threads(threads) or 1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class ThreadTuner:
    """Times a loop's repeated step and keeps the intra-op thread count that runs it fastest.

    It starts on one thread -- safe on a busy machine, where a thread team falls off a
    cliff -- and tries the neighbouring count (double, or half) for `trial` steps; the
    candidate wins if its fastest step beats the current count's fastest by `margin` (slower
    steps met a disturbance that came and went; the margin keeps noise from flapping). A win
    is followed at once by the next trial, so it climbs to the cores in a few steps; a loss
    waits `every` seconds, twice as long after each loss in a row (another program may start
    or stop, and a trial on a busy machine costs). A candidate step slower than the current
    count by half ends its trial at once.

    On this project's CPUs (MKL, oneDNN) a loss does not depend on the thread count --
    checked bit for bit with 1 and 2 threads for GRU and LSTM training -- so the choice,
    though it follows the clock, does not change the numbers.

    A count the user fixed (`threads`, OMP_NUM_THREADS) starts there and is the ceiling; the
    tuner leaves it only for a collapse -- fewer threads at least COLLAPSE times faster,
    a busy neighbour's doing -- and says so once; never within a run that keeps it
    (KEEP_THREADS, `keep_threads`).
    """

    COLLAPSE = 1.5

    def __init__(
        self,
        threads: int | None = None,
        trial: int = 4,
        every: float = 30.0,
        enabled: bool = True,
        margin: float = 0.05,
        per_step: bool = False,
    ) -> None:
        fixed = user_threads(threads)
        self.previous = torch.get_num_threads()
        self.cores = cpu_cores()
        self.fixed, self.ceiling = fixed, fixed or self.cores
        self.source = (
            flag("threads", threads)
            if threads
            else f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
        )
        guard = fixed is not None and fixed > 1 and not KEEP_THREADS.get()  # may leave a collapse
        self.active = enabled and self.cores > 1 and (fixed is None or guard)
        self.current = fixed or (1 if self.active else self.previous)
        self.trial, self.every, self.margin = trial, every, margin
        self.wait = every
        self.candidate: int | None = None
        self.times: dict[int, list[float]] = {self.current: []}
        self.next_trial = 0.0  # the first trial as soon as `trial` steps are timed
        self.skip = 1  # the first step allocates and warms caches: not a measure
        self.direction = 1
        if not per_step:  # else the count holds only inside step()
            torch.set_num_threads(self.current)

    @contextlib.contextmanager
    def step(self) -> Iterator[None]:
        """One timed step on the tuner's count, and the caller's count back after it: for a
        loop whose consumer runs between steps (a generator of tokens)."""
        outside = torch.get_num_threads()
        torch.set_num_threads(self.candidate or self.current)
        started = time.perf_counter()
        try:
            yield
        finally:
            self.record(time.perf_counter() - started)
            torch.set_num_threads(outside)

    def record(self, seconds: float) -> None:
        """Tell the tuner how long the last step took."""
        if not self.active:
            return
        if self.skip:
            self.skip -= 1
            return
        if self.candidate is None:
            samples = self.times[self.current]
            samples.append(seconds)
            del samples[: -self.trial]
            if len(samples) >= self.trial and time.perf_counter() >= self.next_trial:
                self._try_neighbour()
            return
        self.times[self.candidate].append(seconds)
        hopeless = seconds > 1.5 * min(self.times[self.current])
        if hopeless or len(self.times[self.candidate]) >= self.trial:
            self._decide()

    def _try_neighbour(self) -> None:
        for direction in (self.direction, -self.direction):
            other = min(self.current * 2 if direction > 0 else self.current // 2, self.ceiling)
            if other >= 1 and other != self.current:
                self.direction, self.candidate = direction, other
                self.times[other] = []
                torch.set_num_threads(other)
                return
        self.next_trial = time.perf_counter() + self.every

    def _decide(self) -> None:
        assert self.candidate is not None
        ours, theirs = min(self.times[self.current]), min(self.times[self.candidate])
        below_users = self.fixed is not None and self.candidate < self.fixed
        needed = 1 / self.COLLAPSE if below_users else 1 - self.margin
        if theirs < ours * needed:
            if below_users and self.current == self.fixed:
                _say_once(
                    f"nextchar: {self.source}: {self.fixed} threads run {ours / theirs:.1f}x "
                    f"slower than {self.candidate} now (another program is using the cores): "
                    f"running on {self.candidate}, and back up when it pays; "
                    f"{flag('keep_threads')} keeps {self.fixed}",
                    about=f"collapse {self.source}",
                )
            self.current, self.wait = self.candidate, self.every
            self.times = {self.current: self.times[self.candidate]}
            self.next_trial = 0.0  # keep climbing (or descending) while it pays
        else:
            self.direction = -self.direction
            self.times = {self.current: self.times[self.current]}
            self.next_trial = time.perf_counter() + self.wait
            self.wait = min(self.wait * 2, 20 * self.every)
        self.candidate = None
        torch.set_num_threads(self.current)

    def close(self) -> None:
        """Give the process back the thread count it had."""
        torch.set_num_threads(self.previous)


def available_memory() -> int | None:
    """Bytes the kernel says a new allocation can still get (MemAvailable), or None where it
    cannot tell (no /proc)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_memory(what: str, needed: int, sizes: tuple[str, ...]) -> None:
    """Refuse work whose estimated peak does not fit the memory free now: Linux overcommits,
    so an allocation that cannot be backed is not an error but the kernel's OOM killer,
    later, with no message at all."""
    free = available_memory()
    if free is not None and needed > free:
        raise NextcharError(
            f"{what} needs about {needed / 2**30:,.1f} GiB and {free / 2**30:,.1f} GiB are free; "
            f"choose smaller sizes ({', '.join(flag(n) for n in sizes)})"
        )
