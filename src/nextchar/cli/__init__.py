"""Command line: argument parsing and printing only. Each command group is a module that adds
its parsers (flags derived from the config dataclasses) and runs one library function; errors
become one line on stderr and exit code 2. Building the parser imports no torch, so `--help`
and `--version` answer at once; a command imports what it needs when it runs."""

from __future__ import annotations

import errno
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from nextchar.cli.common import RANK0_FIRST, Parser, Sub, other_rank
from nextchar.cli.lab import add_experiment, add_lab, add_shapes
from nextchar.cli.measure import add_compare, add_eval, add_export
from nextchar.cli.serving import add_chat, add_serve
from nextchar.cli.text import add_corpora, add_neighbors, add_predict, add_sample, add_tokens
from nextchar.cli.train import add_train
from nextchar.core import __version__
from nextchar.core.errors import NextcharError, io_error
from nextchar.core.options import on_command_line

# in the order `nextchar --help` lists them
COMMANDS: tuple[Callable[[Sub], None], ...] = (
    add_lab,
    add_shapes,
    add_train,
    add_corpora,
    add_sample,
    add_predict,
    add_neighbors,
    add_tokens,
    add_eval,
    add_compare,
    add_export,
    add_serve,
    add_chat,
    add_experiment,
)


def build_parser() -> Parser:
    parser = Parser(
        prog="nextchar", description="Next-character prediction with recurrent neural networks."
    )
    parser.add_argument("--version", action="version", version=f"nextchar {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    started = time.perf_counter()  # a --max-time budget counts from here, before torch loads
    args = build_parser().parse_args(argv)
    args.started = started
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what a launcher passes on
    code = _run(args)
    if code and other_rank():
        time.sleep(RANK0_FIRST)
    return code


def _run(args: Any) -> int:
    try:
        with on_command_line():
            code = args.run(args)
        sys.stdout.flush()  # a full or closed stdout fails here, not in the interpreter's exit
        return code
    except NextcharError as exc:
        return _say(args.command, str(exc), 2)
    except KeyboardInterrupt:
        return _say(args.command, "interrupted", 130, prefix="")
    except OSError as exc:
        if _stdout_failed(exc):  # `nextchar eval ... | head`, or > /dev/full: quiet, non-zero
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141 if exc.errno == errno.EPIPE else 1
        return _say(args.command, io_error(exc), 2)


def _say(command: str, message: str, code: int, prefix: str = "error: ") -> int:
    """One line on stderr, from one process (see other_rank): a character that would end or
    garble the line (a control character from a file's name or a damaged field) is escaped."""
    if not other_rank():
        line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
        print(f"nextchar {command}: {prefix}{line}", file=sys.stderr)
    return code


def _stdout_failed(exc: OSError) -> bool:
    """Whether the error is our standard output's (a reader that left, a full device): the
    library's own writes name their file (models/checkpoint.py makes sure of it)."""
    return exc.filename is None and exc.errno in (errno.EPIPE, errno.ENOSPC, errno.EBADF)
