"""Commands that keep a model open: `serve` (the web page) and `chat` (the terminal)."""

from __future__ import annotations

import argparse

from nextchar.cli.common import MODEL_ARG_HELP, Sub, add_device, add_fields, given
from nextchar.core.commands import CHAT_SAMPLING, SampleConfig, ServeConfig, ShowConfig

CHAT_SHOWN = {"top_k": 5}  # next tokens under the prompt


def add_serve(sub: Sub) -> None:
    p = sub.add_parser(
        "serve",
        help="a web page that shows the model think (next-token bars, cells, surprise)",
        description="Serve one or more models on a local web page: live next-token "
        "probabilities as you type, streamed continuations, hidden-unit heatmaps and per-"
        "character surprise; JSON API under /api/ (documented at /docs).",
    )
    p.add_argument("checkpoints", nargs="+", metavar="CKPT", help=MODEL_ARG_HELP)
    add_fields(p, ServeConfig)
    add_device(p)
    p.set_defaults(run=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from nextchar.serve import serve

    options = ServeConfig(**given(args, ServeConfig))
    serve(args.checkpoints, options.host, options.port, args.device, options.allowed_host)
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
    add_fields(p, ShowConfig, defaults=CHAT_SHOWN)
    add_fields(p, SampleConfig, ("length", "temperature", "top_k", "seed"), CHAT_SAMPLING)
    add_device(p)
    p.set_defaults(run=run_chat)


def run_chat(args: argparse.Namespace) -> int:
    from nextchar.models import load
    from nextchar.serve.chat import chat

    config = SampleConfig(**{**CHAT_SAMPLING, **given(args, SampleConfig)})  # errors first
    shown = ShowConfig(**{**CHAT_SHOWN, **given(args, ShowConfig)})
    chat(lambda: load(args.checkpoint, args.device), config, shown.top_k)
    return 0
