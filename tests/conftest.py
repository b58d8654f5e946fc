"""Shared test helpers: run the real command line in-process (`cli`) or, where a
test is about the process itself (exit codes, signals, start-up, hash seeds), in a fresh one
(`run_process`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

# The one tiny model the tests train, as options and as the command line's flags: small
# enough to train in a second, big enough to learn the plays below.
TINY = {"hidden_size": 24, "embedding_dim": 16}
TINY_TRAINING = {"batch_size": 4, "seq_len": 32, "warmup_steps": 5, "lr": 0.01, "device": "cpu"}


def flags(**options: object) -> list[str]:
    """Options as command-line flags: hidden_size=24 -> --hidden-size 24; True -> the flag."""
    from nextchar.core.options import flag_name

    out: list[str] = []
    for name, value in options.items():
        out += [flag_name(name)] if value is True else [flag_name(name), str(value)]
    return out


TINY_FLAGS = [*flags(**TINY, **TINY_TRAINING), "--quiet"]


def plays(lines: int = 150) -> str:
    """A small play: two speakers, numbered lines (learnable in a few dozen steps)."""
    return "".join(
        f"ROMEO: line {i}, my lady.\nJULIET: and yours, {i % 7}.\n" for i in range(lines)
    )


class Ran(NamedTuple):
    """What a command line did: unpacks as (code, out, err) and reads as a CompletedProcess."""

    returncode: int
    stdout: str
    stderr: str


def tiny_checkpoint(folder: Path, text: str, **config: object) -> str:
    """A checkpoint of an untrained tiny LSTM whose vocabulary is `text`'s characters."""
    import torch

    from nextchar.core.config import model_config
    from nextchar.models import build_model
    from nextchar.models.checkpoint import save_checkpoint
    from nextchar.text.tokenizers import CharTokenizer

    tok = CharTokenizer.build(text)
    torch.manual_seed(0)
    sizes = {"cell": "lstm", "hidden_size": 12, **config}
    model = build_model(model_config(vocab_size=tok.vocab_size, **sizes))
    return str(save_checkpoint(folder / "ckpt", model.eval(), tok))


def in_process(*args: object, cwd: Path | None = None) -> Ran:
    """main(argv) in this process, in `cwd`, output captured (the `cli` fixture's engine; for
    module-scoped fixtures, which cannot use a function-scoped one)."""
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
    return Ran(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli(monkeypatch):
    """The one way tests run `nextchar ARGS...`: main(argv) in this process, with `env` set
    and in `cwd`; a usage error's SystemExit becomes its exit status."""

    def run(*args: object, env: dict[str, str] | None = None, cwd: Path | None = None) -> Ran:
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
