"""The LanguageModel contract: everything the rest of nextchar may ask of a model. Training,
evaluation, sampling, serving, export and the cell view talk to this and to nothing else;
none of them tests a model's kind, cell or attributes.

State: what `forward` returns and takes back. A recurrent model's state is a tuple of tensors
named by `state_names`, each [layers, batch, units] (batch on dim 1: that is the axis DDP
gathers, resume slices and ONNX names "batch"); GPT-2's is transformers' key/value cache, which
it does not carry between training windows (`state_names` is empty).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from nextchar.core.config import ModelConfig
from nextchar.core.errors import NextcharError

State = Any  # tuple[torch.Tensor, ...] (named by state_names), a key/value cache, or None
# One token in at batch 1, the logits [1, V] for the next one out; the state is carried inside.
Stepper = Callable[[int], torch.Tensor]

# Optional capabilities a model declares in `capabilities`; `limits` says why one is missing.
CELL_VIEW = "cells"  # cell_states(): every unit's state (and gates) after each token
BEAM_SEARCH = "beam_search"  # beam_search(prime_ids, config)
ONNX = "onnx"  # export_module(): a module the TorchScript ONNX exporter handles
EMBEDDING_INIT = "embedding_init"  # an input embedding that embeddings may initialise
# trainable weights and a carried state: dynamic evaluation, through adapting_forward(ids,
# state) -> (logits, state, finish), forward's twin whose gradients are complete once
# finish() runs after backward
DYNAMIC_EVAL = "dynamic_eval"


@runtime_checkable
class LanguageModel(Protocol):
    config: ModelConfig
    context_size: int | None  # tokens the model can see; None = unbounded (state carried)
    state_names: tuple[str, ...]
    capabilities: frozenset[str]
    limits: dict[str, str]  # capability -> why this model lacks it (for the error message)
    embedding: nn.Embedding | None  # the input embedding (neighbours, freezing), if any
    layers: int
    units: int  # width of one layer (hidden size, or GPT-2's n_embd)

    def __call__(self, ids: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]: ...

    def forward(self, ids: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        """ids [B, T] -> (logits [B, T, V], state after the last position)."""
        ...

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        """The state before the first token (zeros; None for GPT-2's empty cache)."""
        ...

    def state_shapes(self, batch_size: int) -> dict[str, tuple[int, ...]]:
        """Name -> shape of each state tensor, in `state_names` order."""
        ...

    def preferred_precision(self, device: torch.device) -> str:
        """'bf16' or 'fp32': what `precision='auto'` trains this model in on `device`."""
        ...

    def describe(self) -> str:
        """A short name for plots and tables: 'gru 2x384' or 'gpt2 4L 4H 128d'."""
        ...

    def stepper(self, state: State) -> Stepper:
        """Generation's inner loop: a function that feeds one token at batch 1 from `state`
        and returns the next token's logits [1, V], as `forward` would, as fast as this model
        can (`forward_stepper` when nothing faster exists)."""
        ...


def forward_stepper(model: LanguageModel, state: State) -> Stepper:
    """A Stepper through `forward`: one [1, 1] call per token."""
    device = next(iter(model.parameters()), torch.empty(0)).device  # type: ignore[attr-defined]
    carried = [state]

    def step(token: int) -> torch.Tensor:
        logits, carried[0] = model(torch.tensor([[token]], device=device), carried[0])
        return logits[:, -1]

    return step


def require(model: LanguageModel, capability: str, action: str) -> None:
    """Refuse, in one line, an action the model does not declare it can do."""
    if capability not in model.capabilities:
        reason = model.limits.get(capability, "")
        raise NextcharError(
            f"{action} is not available for {model.describe()} models"
            + (f": {reason}" if reason else "")
        )


def detach_state(state: State) -> State:
    """Cut the graph behind a carried state (truncated back-propagation through time)."""
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return None if state is None else state


def state_tensors(state: State) -> list[torch.Tensor]:
    """The carried tensors of a state, in `state_names` order (none for GPT-2's cache)."""
    return list(state) if isinstance(state, tuple) else []


def state_from_tensors(tensors: list[torch.Tensor], device: torch.device) -> State:
    return tuple(t.to(device) for t in tensors) if tensors else None
