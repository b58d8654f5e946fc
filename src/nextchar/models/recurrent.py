"""RecurrentLM: the character (or word) language model built on PyTorch's fused recurrent
kernels. It maps ids to logits and carries its state; it knows nothing about text or training.

    ids [B, T] --input--> x [B, T, H_in] --nn.RNN/LSTM/GRU--> h [B, T, H_out] --Linear--> [B, T, V]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nextchar.config import ModelConfig

# nn.RNN/nn.GRU carry h [num_layers, B, H]; nn.LSTM carries (h [num_layers, B, H_out],
# c [num_layers, B, H]).
State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]

CELL_MODULES: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RecurrentLM(nn.Module):
    """forward(ids[B, T], state=None) -> (logits[B, T, V], state), batch first."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        # One-hot input is the lab's formulation. Multiplying a one-hot vector by W_ih picks a
        # column of W_ih, so it equals an embedding lookup; `embedding` is the fast path and
        # decouples the input width from the vocabulary size.
        self.embedding = (
            nn.Embedding(config.vocab_size, config.input_size)
            if config.input == "embedding"
            else None
        )
        kwargs: dict[str, object] = {
            "input_size": config.input_size,
            "hidden_size": config.hidden_size,
            "num_layers": config.num_layers,
            "bias": config.bias,
            "batch_first": True,
            "dropout": config.dropout if config.num_layers > 1 else 0.0,
        }
        if config.cell == "rnn":
            kwargs["nonlinearity"] = config.nonlinearity
        if config.proj_size:
            kwargs["proj_size"] = config.proj_size
        self.rnn = CELL_MODULES[config.cell](**kwargs)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.output_size, config.vocab_size)
        if config.tie_weights and self.embedding is not None:
            self.head.weight = self.embedding.weight  # [V, H_out], one shared tensor

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """ids [B, T] -> input vectors [B, T, H_in]."""
        if self.embedding is None:
            return F.one_hot(ids, self.config.vocab_size).to(self.head.weight.dtype)
        return self.embedding(ids)

    def forward(self, ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        return self.forward_inputs(self.embed(ids), state)

    def forward_inputs(
        self, x: torch.Tensor, state: State | None = None
    ) -> tuple[torch.Tensor, State]:
        """From input vectors x [B, T, H_in] (so gradients can be taken w.r.t. them)."""
        out, state = self.rnn(x, state)  # [B, T, H_out]
        return self.head(self.drop(out)), state  # [B, T, V]

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        """Zeros, the same state torch uses when none is given."""
        cfg = self.config
        device = device if device is not None else self.head.weight.device
        dtype = self.head.weight.dtype
        h = torch.zeros(cfg.num_layers, batch_size, cfg.output_size, device=device, dtype=dtype)
        if cfg.cell == "lstm":
            c = torch.zeros(cfg.num_layers, batch_size, cfg.hidden_size, device=device, dtype=dtype)
            return h, c
        return h


def detach_state(state: State | None) -> State | None:
    """Cut the graph behind a carried state (truncated back-propagation through time)."""
    if state is None:  # a model that carries nothing between windows (GPT-2 in training)
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)  # type: ignore[return-value]
    return state.detach()
