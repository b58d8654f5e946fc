"""Commands that keep a model open: `serve` (the web page) and `chat` (the terminal)."""

from __future__ import annotations

import argparse

from nextchar.cli.common import MODEL_ARG_HELP, Sub, add_device, add_fields, given
from nextchar.core.commands import CHAT_SAMPLING, SampleConfig


def add_serve(sub: Sub) -> None:
    p = sub.add_parser(
        "serve",
        help="a web page that shows the model think (next-token bars, cells, surprise)",
        description="Serve one or more models on a local web page: live next-token "
        "probabilities as you type, streamed continuations, hidden-unit heatmaps and per-"
        "character surprise; JSON API under /api/ (documented at /docs).",
    )
    p.add_argument("checkpoints", nargs="+", metavar="CKPT", help=MODEL_ARG_HELP)
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: 127.0.0.1, this machine only; 0.0.0.0 opens it to "
        "the network)",
    )
    p.add_argument("--port", type=int, default=8000, help="port, 1-65535 (default: 8000)")
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests whose Host header is NAME (repeatable); loopback names and "
        "IP addresses are always accepted, other names are refused (DNS rebinding)",
    )
    add_device(p)
    p.set_defaults(run=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from nextchar.serve import serve

    serve(args.checkpoints, args.host, args.port, args.device, args.allowed_host)
    return 0


def add_chat(sub: Sub) -> None:
    p = sub.add_parser(
        "chat",
        help="the terminal version of serve: type a prefix, see the next tokens and a sample",
        description="Type a prefix; see the most likely next tokens and a sampled "
        "continuation. Lines starting with ':' change settings (:temperature 0.5, :top-k 20, "
        ":length 100, :seed 1, :greedy, :help, :quit). '\\n' in a line is a newline.",
    )
    p.add_argument("checkpoint", help=MODEL_ARG_HELP)
    p.add_argument("--top", type=int, default=5, help="next tokens shown (default: 5)")
    add_fields(p, SampleConfig, ("length", "temperature", "top_k", "seed"), CHAT_SAMPLING)
    add_device(p)
    p.set_defaults(run=run_chat)


def run_chat(args: argparse.Namespace) -> int:
    from nextchar.models import load
    from nextchar.serve.chat import chat

    config = SampleConfig(**{**CHAT_SAMPLING, **given(args, SampleConfig)})  # errors first
    chat(lambda: load(args.checkpoint, args.device), config, args.top)
    return 0
