"""Shared test helpers: run the real command line in-process (`cli`, `run_cli`) or, where a
test is about the process itself (exit codes, signals, start-up, hash seeds), in a fresh one
(`run_process`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


def in_process(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """main(argv) in this process, in `cwd`, output captured: for module-scoped fixtures,
    where the function-scoped `run_cli` cannot be used."""
    import contextlib
    import io

    from nextchar.cli import main

    out, err, here = io.StringIO(), io.StringIO(), os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(here)
    return subprocess.CompletedProcess([str(a) for a in args], code, out.getvalue(), err.getvalue())


@pytest.fixture
def run_cli(monkeypatch):
    """Run `nextchar ARGS...` through main(argv) in this process, with `env` set and in `cwd`;
    returns a CompletedProcess (returncode, stdout, stderr) as a subprocess would."""

    def run(
        *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 0
    ) -> subprocess.CompletedProcess[str]:
        with monkeypatch.context() as patch:
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            return in_process(*args, cwd=cwd)

    return run


@pytest.fixture
def run_process():
    """Run `python -m nextchar ARGS...` in a subprocess; returns the CompletedProcess."""

    def run(
        *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "PYTHONIOENCODING": "utf-8", **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "nextchar", *args],
            capture_output=True,
            text=True,
            env=full_env,
            cwd=cwd,
            timeout=timeout,
        )

    return run


@pytest.fixture
def cli(capsys):
    """Run the real command line in-process, `main(argv)`: (exit code, stdout, stderr)."""
    from nextchar.cli import main

    def run(*argv: object) -> tuple[int, str, str]:
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def one_line():
    """Check a refusal: exit status 2 and exactly one line on stderr, matching `pattern`."""

    def check(code: int, err: str, pattern: str) -> None:
        assert code == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err, err
        assert re.search(pattern, lines[0]), lines[0]

    return check


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `cuda` need a CUDA device; elsewhere they are skipped with the reason."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (none here)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
