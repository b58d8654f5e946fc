"""Training over several processes with PyTorch DistributedDataParallel, started by torchrun.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK (and the rendezvous address) for every process;
`nextchar train` reads them here and nowhere else. One process is rank 0, the main one: it
alone writes checkpoints, metrics and the progress bar. The others compute and agree.

    torchrun with 2 processes per node, running `-m nextchar train FILE ...`

batch_size stays the *global* batch: rank r of N takes rows [r*B/N, (r+1)*B/N) of each
[B, T] batch, so N processes compute the gradient one process computes for batch B, and the
losses of the two runs follow each other (tested on CPU with 2 gloo processes).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from nextchar.core.errors import NextcharError
from nextchar.core.options import flag


@dataclass(frozen=True)
class Group:
    """This process's place among the training processes (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    launched: bool = False  # started by torchrun (or another launcher that sets the variables)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        # Under a launcher even one process joins a group: torchrun with one process then runs the
        # very code path (DDP, NCCL) that N processes run, which is how it is checked on a
        # machine with one GPU.
        return self.launched or self.world_size > 1

    def rows(self, batch_size: int) -> slice:
        """This rank's rows of a global batch of `batch_size`."""
        per_rank = batch_size // self.world_size
        return slice(self.rank * per_rank, (self.rank + 1) * per_rank)


def from_env() -> Group:
    """The group torchrun describes in the environment; a single process without it."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise NextcharError("RANK, WORLD_SIZE and LOCAL_RANK must be integers") from None
    launched = all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR"))
    return Group(rank, world, local, launched)


def check_batch(group: Group, batch_size: int) -> None:
    if batch_size % group.world_size:
        raise NextcharError(
            f"{flag('batch_size', batch_size)} is the global batch, split over {group.world_size} "
            f"processes: use a multiple of {group.world_size}"
        )


def start(group: Group, device: torch.device) -> None:
    """Join the process group: NCCL between GPUs, gloo between CPU processes."""
    if not group.enabled or dist.is_initialized():
        return
    if device.type == "mps":
        raise NextcharError("training over several processes needs CUDA or the CPU, not mps")
    backend = "nccl" if device.type == "cuda" else "gloo"
    kwargs = {"device_id": device} if device.type == "cuda" else {}
    dist.init_process_group(backend, timeout=timedelta(minutes=30), **kwargs)


def stop(group: Group, finished: bool = False) -> None:
    """Leave the process group. After a run that finished everywhere, wait for every process
    first: tearing gloo down while a peer still talks to it aborts the process
    ("terminate called without an active exception")."""
    if group.enabled and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()


def device_for(group: Group, device: torch.device) -> torch.device:
    """One GPU per process on a node: local rank r takes cuda:r."""
    if group.enabled and device.type == "cuda":
        if group.local_rank >= torch.cuda.device_count():
            raise NextcharError(
                f"process {group.local_rank} on this node has no GPU of its own "
                f"({torch.cuda.device_count()} visible): use "
                f"{flag('processes', torch.cuda.device_count(), command_line=True)} (torchrun's "
                "--nproc-per-node) or fewer"
            )
        torch.cuda.set_device(group.local_rank)
        return torch.device("cuda", group.local_rank)
    return device


def mean(group: Group, value: torch.Tensor) -> torch.Tensor:
    """The mean of a scalar over all processes (a no-op for one)."""
    if not group.enabled:
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / group.world_size


def agree(group: Group, seconds: float, stop: bool, device: torch.device) -> tuple[float, bool]:
    """Rank 0's clock and 'stop if any process asks to' (Ctrl-C, max_time): every process
    must take the same decisions, or one would wait forever for the others' gradients; and
    a learning rate that follows the clock must be the same number everywhere."""
    if not group.enabled:
        return seconds, stop
    both = torch.tensor([seconds if group.is_main else 0.0, float(stop)], device=device)
    dist.all_reduce(both, op=dist.ReduceOp.SUM)
    return float(both[0]), bool(both[1] > 0)


def gather_rows(group: Group, tensor: torch.Tensor, dim: int) -> torch.Tensor:
    """Concatenate every process's slice along `dim`, in rank order (e.g. the carried hidden
    state [L, B/N, H] -> [L, B, H], the layout a single process would have)."""
    if not group.enabled:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(group.world_size)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=dim)


def gather_bytes(group: Group, tensor: torch.Tensor) -> list[torch.Tensor]:
    """Every process's copy of a small uint8 tensor (RNG states), in rank order."""
    if not group.enabled:
        return [tensor]
    parts: list[torch.Tensor | None] = [None] * group.world_size
    dist.all_gather_object(parts, tensor)
    return [p for p in parts if p is not None]


def launch(processes: int, argv: list[str]) -> int:
    """Run `nextchar ARGV` in `processes` processes on this machine and wait for them: what
    `torchrun --standalone --nproc-per-node N` does, started from here so that the flags were
    checked once before any process started, and a failure ends in the one line rank 0
    prints (or one line here, if a process died without one), not in torchrun's report.

    The agent runs off the main thread, which leaves the signals to us: Ctrl-C reaches the
    processes from the terminal (each stops at the step and saves, as alone); SIGTERM or
    SIGHUP sent to this process is passed on to them once."""
    import logging
    import signal
    import sys
    import threading
    import uuid

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from nextchar.core.runtime import cpu_cores

    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    # each process's share of the cores (torchrun sets 1, with a warning)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cpu_cores() // processes)))
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=processes,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        monitor_interval=0.1,
    )
    outcome: dict[str, Any] = {"code": 0}

    def agent() -> None:
        try:
            elastic_launch(config, sys.executable)("-m", "nextchar", *argv)
        except ChildFailedError as exc:
            main = exc.failures.get(0)
            if main is not None and main.exitcode in (2, 130):  # rank 0 said why, in one line
                outcome.update(code=main.exitcode)
            else:
                rank, failure = exc.get_first_failure()
                outcome.update(code=failure.exitcode, rank=rank)

    def pass_on(signum: int, frame: Any) -> None:
        for pid in _children():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    thread = threading.Thread(target=agent, name="nextchar-launch", daemon=True)
    wanted = {signal.SIGINT: signal.SIG_IGN}  # the processes have it from the terminal
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            wanted[getattr(signal, name)] = pass_on
    previous = {sig: signal.signal(sig, handler) for sig, handler in wanted.items()}
    try:
        thread.start()
        while thread.is_alive():
            thread.join(0.2)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    code, rank = outcome["code"], outcome.get("rank")
    if rank is None:
        return code  # success, or rank 0's own line (an error, or a stop that saved)
    how = f"was killed by signal {-code}" if code < 0 else f"ended with exit status {code}"
    raise NextcharError(f"training process {rank} of {processes} {how}; see its output above")


def _children() -> list[int]:
    """This process's children (Linux's /proc; elsewhere none are known)."""
    pids: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{os.getpid()}/task"):
            with open(f"/proc/{os.getpid()}/task/{task}/children") as f:
                pids += [int(pid) for pid in f.read().split()]
    return pids
