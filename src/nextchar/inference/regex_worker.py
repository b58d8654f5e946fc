"""A user's regular expression, compiled and matched in a child process with a time limit and
a memory limit, so that no pattern can freeze or fill the process that asked (a server).

Matching time is not the only danger: `(?:(?:a{1000}){1000}){1000}` is 31 characters whose
*compiling* takes gigabytes and seconds, before any time limit inside the regex engine starts.
A child process is the one boundary that holds for both: it is killed when its time is up,
and its address space is capped, so an allocation past the cap fails in the child alone. The
child comes from a fork server (a small process started once, without torch), so a pattern
costs a fork, not an interpreter; the compiled-pattern cache dies with the child.

This module imports nothing of nextchar's: it is what the fork server loads.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
from typing import Any

SECONDS = 1.0  # compiling and matching together
MEMORY = 256 * 2**20  # bytes the child may add to its address space

_context: Any = None


def _limit_memory() -> None:
    try:
        import resource
    except ImportError:  # Windows: the time limit still holds
        return
    with open("/proc/self/statm") as f:  # pages of the address space in use now
        used = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + MEMORY, used + MEMORY))


def _child(pattern: str, text: str, conn: Any) -> None:
    with contextlib.suppress(OSError, ValueError):  # no /proc (macOS): time still holds
        _limit_memory()
    try:
        import regex

        compiled = regex.compile(pattern)
        conn.send(("spans", [m.span() for m in compiled.finditer(text)]))
    except MemoryError:
        conn.send(("memory", None))
    except Exception as exc:  # a malformed pattern: regex.error, OverflowError, ...
        conn.send(("bad", str(exc).splitlines()[0] if str(exc) else type(exc).__name__))


def _pool_context() -> Any:
    global _context
    if _context is None:
        methods = multiprocessing.get_all_start_methods()
        _context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        if "forkserver" in methods:
            _context.set_forkserver_preload([__name__])
    return _context


def spans(pattern: str, text: str) -> tuple[str, Any]:
    """("spans", [(start, end), ...]) of the pattern's matches in `text`; or ("time", None),
    ("memory", None), ("bad", message) when it took too long, too much memory, or does not
    compile."""
    ctx = _pool_context()
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(pattern, text, send), daemon=True)
    child.start()
    send.close()
    try:
        if not receive.poll(SECONDS):
            return "time", None
        try:
            return receive.recv()
        except EOFError:  # killed by the memory cap before it could say so
            return "memory", None
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receive.close()


if __name__ == "__main__":  # a quick check by hand: python -m ... PATTERN TEXT
    print(spans(sys.argv[1], sys.argv[2]))
