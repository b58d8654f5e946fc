"""The commands as functions, for notebooks and scripts: `lab`, `shapes`, `train`, `load`,
`sample`, `predict`, `evaluate` take the command line's options as keyword arguments (a
flag's name with underscores: `max_time=60`), validated by the same option fields, and return
objects that print the command's text and show themselves in Jupyter (`_repr_html_`): the
lab's trace, the shapes tables, a training summary with its curves, a prediction's bars.
Thin on purpose: each calls the one library function that its command calls.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from nextchar.core.commands import LabConfig, SampleConfig
from nextchar.core.config import GPT2Config, RecurrentConfig, TrainConfig
from nextchar.core.errors import NextcharError
from nextchar.core.options import did_you_mean, field_of, keyword

if TYPE_CHECKING:
    from torch import nn

    from nextchar.classroom.lab import LabResult
    from nextchar.classroom.shapes import ShapeTable
    from nextchar.inference.evaluate import EvalResult
    from nextchar.inference.generate import Prediction
    from nextchar.text.tokenizers import Tokenizer
    from nextchar.training.result import TrainResult


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _refuse_unknown(options: dict[str, Any], known: set[str], what: str) -> None:
    unknown = sorted(set(options) - known)
    if unknown:
        words = sorted({keyword(n) for n in known})  # as a caller writes them (model=)
        raise NextcharError(
            f"{what} has no option {', '.join(unknown)}{did_you_mean(unknown[0], words)}; "
            f"it takes {', '.join(words)}"
        )


def _in_jupyter() -> bool:
    return "ipykernel" in sys.modules


def lab(sentence: str | None = None, progress: bool | None = None, **options: Any) -> LabResult:
    """`nextchar lab`: train the notes' RNN on one sentence (options: cell, epochs, lr,
    hidden_size, num_layers, nonlinearity, seed, device, every, threads). In a script the
    trace is printed as it goes, as the command prints it (`progress=False`: quiet); in
    Jupyter the returned result shows it."""
    from nextchar.classroom.lab import header_lines, prepare_lab, trace_line, train_lab

    _refuse_unknown(options, _fields(LabConfig) - {"sentence"}, "lab()")
    if sentence is not None:
        options["sentence"] = sentence
    config = LabConfig(**options)
    prepared = prepare_lab(config)
    if progress is None:
        progress = not _in_jupyter()
    if progress:
        print("\n".join(header_lines(prepared)), flush=True)
    show = (lambda step: print(trace_line(step, config.epochs), flush=True)) if progress else None
    return train_lab(prepared, on_step=show)


def shapes(cell: str = "rnn", **options: Any) -> ShapeTable:
    """`nextchar shapes`: every tensor and weight shape of a real nn.RNN/LSTM/GRU call
    (options: input_size, hidden_size, num_layers, bidirectional, proj_size, batch_first,
    batch, seq_len, unbatched, bias)."""
    from nextchar.classroom.shapes import shape_table
    from nextchar.core.commands import ShapeConfig

    _refuse_unknown(options, _fields(ShapeConfig) - {"cell"}, "shapes()")
    return shape_table(ShapeConfig(cell=cell, **options))


def train(
    *files: str | Path,
    out: str | Path | None = None,
    level: str | None = None,
    resume: str | Path | None = None,
    progress: bool = True,
    **options: Any,
) -> TrainResult:
    """`nextchar train FILES...`: files, directories or built-in corpora (`"shakespeare"`);
    options are the flags of `nextchar train` with underscores (max_time=60, cell="lstm").
    `resume=RUN_DIR` continues a run (with only its budget options, such as max_steps).
    Returns the summary; its run directory holds the checkpoints, metrics and curves."""
    from nextchar.training.loop import train as train_run
    from nextchar.training.plan import plan_run

    model_keys = _fields(RecurrentConfig) | _fields(GPT2Config)
    train_keys = _fields(TrainConfig) - {"files"}
    options = {field_of(k): v for k, v in options.items()}  # model="gpt2" is kind="gpt2"
    _refuse_unknown(options, model_keys | train_keys, "train()")
    plan = plan_run(
        [str(f) for f in files],
        {k: v for k, v in options.items() if k in model_keys},
        {k: v for k, v in options.items() if k in train_keys},
        level,
        resume,
        out,
    )
    # the command's report lines (how the embedding was initialised, ...) are printed too
    return train_run(
        plan.model, plan.train, plan.run_dir, resume=plan.resume, progress=progress, log=print
    )


class Model(NamedTuple):
    """A loaded model and its tokenizer; unpacks as `model, tokenizer = load(...)`."""

    model: nn.Module
    tokenizer: Tokenizer

    def predict(self, text: str, k: int = 10) -> Prediction:
        """The k most likely next tokens after `text`."""
        from nextchar.inference.generate import predict_next

        return predict_next(self.model, self.tokenizer, text, k)

    def sample(self, prime: str | None = None, **options: Any) -> str:
        """The prime (default: a new line) and its continuation, as `nextchar sample` prints
        them; options are those of the command (length, temperature, top_k, top_p, greedy,
        seed, ...)."""
        from nextchar.inference.generate import default_prime
        from nextchar.inference.generate import sample as sample_texts

        _refuse_unknown(options, _fields(SampleConfig) - {"num_samples"}, "sample()")
        config = SampleConfig(**options)
        prime = default_prime(self.tokenizer) if prime is None else prime
        return prime + sample_texts(self.model, self.tokenizer, prime, config)[0]

    def evaluate(self, text: str | Path, **options: Any) -> EvalResult:
        """`nextchar eval`: bits per character (and nats, perplexity, accuracy) on a file,
        directory or built-in corpus (`"shakespeare:val"`); options: batch_size, seq_len,
        stride, encoding, errors."""
        from nextchar.inference.evaluate import evaluate_text
        from nextchar.text.data import read_text

        known = {"batch_size", "seq_len", "stride", "encoding", "errors"}
        _refuse_unknown(options, known, "evaluate()")
        read = {k: options.pop(k) for k in ("encoding", "errors") if k in options}
        return evaluate_text(self.model, self.tokenizer, read_text(str(text), **read), **options)

    def __repr__(self) -> str:
        from nextchar.models import count_parameters

        return (
            f"{type(self.model).__name__} with {count_parameters(self.model):,} parameters, "
            f"{self.tokenizer.vocab_size:,} {self.tokenizer.unit}s in its vocabulary"
        )


def load(source: TrainResult | str | Path, device: str = "auto") -> Model:
    """A run (its directory, or what `train` returned), a checkpoint, an exported .onnx
    file, or a GPT-2 (name or directory), ready to predict and sample."""
    from nextchar.models import load as load_model

    return Model(*load_model(getattr(source, "run_dir", source), device))


def _model(source: Model | TrainResult | str | Path) -> Model:
    """A loaded model from itself, a run's result, or a path (a run, checkpoint, .onnx, GPT-2)."""
    return source if isinstance(source, Model) else load(source)


def sample(source: Model | str | Path, prime: str | None = None, **options: Any) -> str:
    """`nextchar sample`: a continuation of `prime` from a run directory or a loaded model."""
    return _model(source).sample(prime, **options)


def predict(source: Model | str | Path, text: str, k: int = 10) -> Prediction:
    """`nextchar predict`: the k most likely next tokens after `text`."""
    return _model(source).predict(text, k)


def evaluate(source: Model | str | Path, text: str | Path, **options: Any) -> EvalResult:
    """`nextchar eval`: bits per character of a model on a file or built-in corpus."""
    return _model(source).evaluate(text, **options)
