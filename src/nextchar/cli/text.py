"""Commands that read a model's predictions: `sample`, `predict`, `neighbors`, `tokens`; and
`corpora`, the texts they can read by name."""

from __future__ import annotations

import argparse

from nextchar.cli.common import MODEL_ARG_HELP, Sub, add_device, add_fields, given
from nextchar.core.commands import EvalConfig, SampleConfig, ShowConfig
from nextchar.display.terminal import bar, columns, pad, prediction_lines, shown


def add_sample(sub: Sub) -> None:
    p = sub.add_parser(
        "sample",
        help="generate text from a checkpoint, streamed",
        description="Generate text from a trained model; the prime is run once "
        "and each new character costs one recurrent step.",
    )
    p.add_argument("checkpoint", help=MODEL_ARG_HELP)
    p.add_argument(
        "--prime",
        default=None,
        help="text to start from (default: a newline, if the model knows one)",
    )
    add_fields(p, SampleConfig)
    add_device(p)
    p.set_defaults(run=run_sample)


def run_sample(args: argparse.Namespace) -> int:
    from nextchar.inference.generate import default_prime, sample_texts
    from nextchar.models import load

    config = SampleConfig(**given(args, SampleConfig))
    model, tokenizer = load(args.checkpoint, args.device)
    prime = args.prime
    if prime is None:
        prime = default_prime(tokenizer)
    tokenizer.encode(prime)  # unknown characters: one clear error before any output
    current = -1
    for index, piece in sample_texts(model, tokenizer, prime, config):
        if index != current:
            if index:
                print()
            if config.num_samples > 1:
                print(f"--- sample {index + 1} ---")
            print(prime, end="")
            current = index
        print(piece, end="", flush=True)
    print()
    return 0


def add_predict(sub: Sub) -> None:
    p = sub.add_parser(
        "predict",
        help="show the most likely next characters after a text",
        description="Print the top-k next characters (tokens) with their "
        "probabilities as a bar chart, and the entropy in bits.",
    )
    p.add_argument(
        "checkpoint",
        help=MODEL_ARG_HELP,
    )
    p.add_argument("text", help="the text so far")
    add_fields(p, ShowConfig)
    add_device(p)
    p.set_defaults(run=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    from nextchar.inference.generate import predict_next
    from nextchar.models import load

    model, tokenizer = load(args.checkpoint, args.device)
    shown_ = ShowConfig(**given(args, ShowConfig))
    prediction = predict_next(model, tokenizer, args.text, shown_.top_k)
    print("\n".join(prediction_lines(prediction)))
    return 0


def add_neighbors(sub: Sub) -> None:
    p = sub.add_parser(
        "neighbors",
        help="nearest words (or characters) by cosine similarity of the model's embedding",
        description="List the vocabulary entries whose input-embedding rows are closest to "
        "WORD's by cosine similarity. One-hot vectors cannot do this: every pair of distinct "
        "words is equally far apart (cosine 0).",
    )
    p.add_argument("checkpoint", help="checkpoint or run directory")
    p.add_argument("word", help="a word (or character) in the model's vocabulary")
    add_fields(p, ShowConfig)
    p.set_defaults(run=run_neighbors)


def run_neighbors(args: argparse.Namespace) -> int:
    from nextchar.models import load
    from nextchar.text.embeddings import nearest

    model, tokenizer = load(args.checkpoint, "cpu")
    result = nearest(model, tokenizer, args.word, ShowConfig(**given(args, ShowConfig)).top_k)
    print(f"nearest to {shown(result.word)} (cosine similarity of input embeddings):")
    width = max(columns(shown(w)) for w, _ in result.neighbours)
    for word, similarity in result.neighbours:
        print(f"  {pad(shown(word), width)}  {similarity:+.3f}  {bar(similarity, 20)}")
    print(f"(one-hot input: every other {tokenizer.unit} would be at cosine 0)")
    return 0


def add_tokens(sub: Sub) -> None:
    p = sub.add_parser(
        "tokens",
        help="how a model's tokenizer cuts a text: tokens per character, byte pieces, unknowns",
        description="A tokenization report: vocabulary size, tokens per character, byte-"
        "fallback and unknown rates, the most frequent and the longest tokens, and a warning "
        "when the text is a poor fit for the tokenizer.",
    )
    p.add_argument("model", help=MODEL_ARG_HELP)
    p.add_argument("files", nargs="+", help="text files or directories")
    add_fields(p, EvalConfig, ("encoding",))
    add_fields(p, ShowConfig)
    p.set_defaults(run=run_tokens)


def run_tokens(args: argparse.Namespace) -> int:
    from nextchar.models import load_tokenizer
    from nextchar.text.data import read_text
    from nextchar.text.tokenizers import token_report

    shown_ = ShowConfig(**given(args, ShowConfig))
    encoding = EvalConfig(**given(args, EvalConfig)).encoding
    tokenizer = load_tokenizer(args.model)
    for path in args.files:
        report = token_report(tokenizer, read_text(path, encoding), shown_.top_k)
        print("\n".join(report.lines(path)))
    return 0


def add_corpora(sub: Sub) -> None:
    p = sub.add_parser(
        "corpora",
        help="list the built-in corpora (names that work wherever a text file does)",
        description="List the texts shipped inside nextchar, with their size and licence. "
        "A name works wherever a text file does: NAME is the training text, NAME:val the "
        "validation text; a local file of the same name wins.",
    )
    p.set_defaults(run=run_corpora)


def run_corpora(args: argparse.Namespace) -> int:
    from nextchar.text.corpora import listing

    print("\n".join(listing()))
    return 0
