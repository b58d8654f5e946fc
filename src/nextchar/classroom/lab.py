"""The classroom lab, faithfully: one sentence, one-hot inputs, nn.RNN (or LSTM/GRU) + Linear,
CrossEntropyLoss, Adam, full-batch epochs, and the prediction printed as it becomes the target.

Differences from the notes, on purpose: the vocabulary is sorted (the notes' `list(set(...))`
order changes with Python's hash seed, so their runs are not repeatable), and predictions are
moved to the CPU before decoding (the notes' `outputs.data.numpy()` fails on CUDA).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from nextchar.core.commands import LabConfig
from nextchar.core.config import RecurrentConfig
from nextchar.core.errors import NextcharError
from nextchar.core.optim import Adam
from nextchar.core.options import flag
from nextchar.core.runtime import (
    pick_device,
    seed_everything,
    threads_for_small_work,
)
from nextchar.display import htmlview
from nextchar.models import RecurrentLM, build_model, count_parameters
from nextchar.text.tokenizers import CharTokenizer


@dataclass(frozen=True)
class LabStep:
    epoch: int
    loss: float
    prediction: str


def trace_line(step: LabStep, epochs: int) -> str:
    """One printed epoch, the epoch number padded to the width of the last one."""
    width = len(str(max(epochs - 1, 0)))
    return f"epoch {step.epoch:>{width}}  loss : {step.loss:.6f} prediction : {step.prediction}"


@dataclass
class LabResult:
    """The lab's trace and outcome. Printed, it is the text of `nextchar lab`; in Jupyter, a
    table with each wrong character of a prediction highlighted."""

    target: str
    steps: list[LabStep] = field(default_factory=list)  # the printed epochs
    first_match_epoch: int | None = None  # first epoch whose prediction equals the target
    final_prediction: str = ""
    final_loss: float = float("nan")
    seconds: float = 0.0
    device: str = "cpu"
    vocab: list[str] = field(default_factory=list)
    parameters: int = 0
    header: list[str] = field(default_factory=list)  # model, vocabulary, input and target
    epochs: int = 0

    @property
    def converged(self) -> bool:
        return self.final_prediction == self.target

    def verdict(self) -> list[str]:
        if self.first_match_epoch is None:
            found = (
                f"result: the prediction never equalled the target in {self.epochs} epochs; "
                f"try {flag('epochs', self.epochs * 2)}"
            )
        else:
            found = (
                "result: the prediction first equalled the target at epoch "
                f"{self.first_match_epoch}"
            )
        status = "equals" if self.converged else "does not equal"
        return [
            found,
            f"final : {self.final_prediction}   ({status} the target)",
            f"time  : {self.seconds:.2f} s on {self.device}",
        ]

    def __str__(self) -> str:
        trace = [trace_line(step, self.epochs) for step in self.steps]
        return "\n".join([*self.header, *trace, "", *self.verdict()])

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        rows = "".join(
            f'<tr><td style="text-align: right">{s.epoch}</td>'
            f'<td style="text-align: right">{s.loss:.6f}</td>'
            f'<td style="{htmlview.MONO}; text-align: left; white-space: pre">'
            f"{htmlview.marked(s.prediction, self.target)}</td></tr>"
            for s in self.steps
        )
        trace = (
            "<table><thead><tr><th>epoch</th><th>loss (nats)</th>"
            '<th style="text-align: left">prediction</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>"
        )
        return (
            htmlview.pre("\n".join(self.header).rstrip())
            + trace
            + htmlview.pre("\n".join(self.verdict()))
        )


@dataclass
class Lab:
    """Everything the training loop needs, built and validated before the first epoch."""

    config: LabConfig
    tokenizer: CharTokenizer
    model: RecurrentLM
    x: torch.Tensor  # [1, L] ids of sentence[:-1]; the model one-hot encodes them
    y: torch.Tensor  # [1, L] ids of sentence[1:]
    device: torch.device

    @property
    def target(self) -> str:
        return self.tokenizer.decode(self.y[0].tolist())


def prepare_lab(config: LabConfig = LabConfig()) -> Lab:
    """Seed, build the vocabulary, the data and the model; raise NextcharError on bad input."""
    device = pick_device(config.device)
    seed_everything(config.seed)
    tokenizer = CharTokenizer.build(config.sentence)
    if tokenizer.vocab_size < 2:
        raise NextcharError(
            f"the sentence {config.sentence!r} has one distinct character: "
            "there is nothing to predict; use a sentence with at least two"
        )
    ids = torch.tensor(tokenizer.encode(config.sentence), device=device)
    vocab_size = tokenizer.vocab_size
    recurrent = RecurrentConfig(
        vocab_size=vocab_size,
        cell=config.cell,  # type: ignore[arg-type]
        hidden_size=vocab_size if config.hidden_size is None else config.hidden_size,
        num_layers=config.num_layers,
        input="onehot",
        nonlinearity=config.nonlinearity,
    )
    model = build_model(recurrent).to(device)
    # A batch of one sentence: input = all but the last character, target = all but the first.
    return Lab(config, tokenizer, model, ids[:-1].unsqueeze(0), ids[1:].unsqueeze(0), device)


def header_lines(lab: Lab) -> list[str]:
    """The lines `nextchar lab` prints before the first epoch: the model as torch writes it,
    the vocabulary, the input and the target."""
    config, mc, vocab = lab.config, lab.model.config, lab.tokenizer.vocab
    layers = f", num_layers={mc.num_layers}" if mc.num_layers > 1 else ""
    # torch's own repr shows the nonlinearity only when it is not the default, and so do we
    layers += f", nonlinearity={mc.nonlinearity!r}" if mc.nonlinearity != "tanh" else ""
    return [
        f"model : nn.{mc.cell.upper()}(input_size={mc.input_size}, "
        f"hidden_size={mc.hidden_size}{layers}, batch_first=True) + "
        f"nn.Linear({mc.hidden_size}, {mc.vocab_size}); one-hot input; "
        f"Adam lr {config.lr:g}; {config.epochs} epochs; seed {config.seed}; {lab.device}",
        f"vocab : {len(vocab)} characters in code point order: {''.join(vocab)!r}",
        f"input : {config.sentence[:-1]!r}",
        f"target: {lab.target!r}",
        "",
    ]


def train_lab(lab: Lab, on_step: Callable[[LabStep], None] | None = None) -> LabResult:
    """The notes' loop: full-batch epochs of forward, cross-entropy, backward, Adam step (on
    one thread: a tiny model's step)."""
    config, model, x, y = lab.config, lab.model, lab.x, lab.y
    vocab_size = lab.tokenizer.vocab_size
    optimizer = Adam(model.parameters(), lr=config.lr)
    result = LabResult(
        target=lab.target,
        device=str(lab.device),
        vocab=lab.tokenizer.vocab,
        parameters=count_parameters(model),
        header=header_lines(lab),
        epochs=config.epochs,
    )
    with threads_for_small_work(config.threads):
        start = time.perf_counter()
        for epoch in range(config.epochs):
            model.train()
            logits, _ = model(x)  # [1, L, V]
            loss = F.cross_entropy(logits.view(-1, vocab_size), y.view(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

            # As in the notes, the prediction is read from this epoch's forward pass.
            predicted = logits.detach().argmax(dim=-1)[0]
            if result.first_match_epoch is None and bool((predicted == y[0]).all()):
                result.first_match_epoch = epoch
            if epoch % config.every == 0 or epoch == config.epochs - 1:
                step = LabStep(epoch, loss.item(), lab.tokenizer.decode(predicted.cpu().tolist()))
                result.steps.append(step)
                if on_step is not None:
                    on_step(step)
    result.seconds = time.perf_counter() - start
    result.final_prediction = result.steps[-1].prediction
    result.final_loss = result.steps[-1].loss
    return result


def run_lab(
    config: LabConfig = LabConfig(), on_step: Callable[[LabStep], None] | None = None
) -> LabResult:
    """Prepare and train; `on_step` sees each printed epoch as it happens."""
    return train_lab(prepare_lab(config), on_step)
