"""RecurrentLM: the character (or word) language model built on recurrent layers -- PyTorch's
fused nn.RNN/LSTM/GRU kernels, or the parallel-scan minGRU/minLSTM of models/minimal.py. It maps
ids to logits and carries its state; it knows nothing about text or training.

    ids [B, T] -(input)-> x [B, T, H_in] -(recurrent layers)-> h [B, T, H_out] -(Linear)-> [B, T, V]
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from nextchar.core.config import ModelConfig
from nextchar.core.options import flag
from nextchar.models.adapt import unrolled_layers
from nextchar.models.contract import (
    BEAM_SEARCH,
    CELL_VIEW,
    DYNAMIC_EVAL,
    EMBEDDING_INIT,
    ONNX,
    State,
    Stepper,
    forward_stepper,
)
from nextchar.models.minimal import GATE_LABELS, MinRNN
from nextchar.models.step import fused_stepper

FUSED: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
# The tensors each cell carries: nn.LSTM carries (h [L, B, H_out], c [L, B, H]); the others h.
STATE_NAMES: dict[str, tuple[str, ...]] = {
    "rnn": ("h",),
    "lstm": ("h", "c"),
    "gru": ("h",),
    "mingru": ("h",),
    "minlstm": ("h",),
}
STATE_LABELS = {"h": "h (hidden)", "c": "c (cell, LSTM)"}


def _layers(config: ModelConfig) -> nn.Module:
    kwargs: dict[str, object] = {
        "input_size": config.input_size,
        "hidden_size": config.hidden_size,
        "num_layers": config.num_layers,
        "bias": config.bias,
        "dropout": config.dropout if config.num_layers > 1 else 0.0,
    }
    if config.cell in GATE_LABELS:
        return MinRNN(config.cell, **kwargs)  # type: ignore[arg-type]
    if config.cell == "rnn":
        kwargs["nonlinearity"] = config.nonlinearity
    if config.proj_size:
        kwargs["proj_size"] = config.proj_size
    return FUSED[config.cell](batch_first=True, **kwargs)


class RecurrentLM(nn.Module):
    """forward(ids[B, T], state=None) -> (logits[B, T, V], state), batch first. The state is a
    tuple named by `state_names`: (h,) or, for an LSTM, (h, c)."""

    context_size = None  # the state carries everything seen

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
        self.rnn = _layers(config)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.output_size, config.vocab_size)
        if config.tie_weights and self.embedding is not None:
            self.head.weight = self.embedding.weight  # [V, H_out], one shared tensor
        self.state_names = STATE_NAMES[config.cell]
        self.layers, self.units = config.num_layers, config.hidden_size
        self.capabilities, self.limits = self._capabilities()

    def _capabilities(self) -> tuple[frozenset[str], dict[str, str]]:
        cfg = self.config
        limits = {BEAM_SEARCH: f"{flag('num_beams')} needs a GPT-2 model; recurrent models sample"}
        if self.embedding is None:
            limits[EMBEDDING_INIT] = (
                f"one-hot input has no embedding to initialise: use {flag('input')} embedding"
            )
        if cfg.proj_size:
            limits[ONNX] = (
                f"an LSTM with {flag('proj_size', cfg.proj_size)}: ONNX's LSTM operator has no "
                f"projection (train without {flag('proj_size')})"
            )
        elif cfg.cell in GATE_LABELS:
            limits[ONNX] = (
                f"the {cfg.cell} scan over time (a custom recurrence on CPUs, logcumsumexp on "
                "GPUs) has no ONNX operator in the TorchScript exporter; serve or sample the "
                "checkpoint itself"
            )
        return frozenset({CELL_VIEW, ONNX, EMBEDDING_INIT, DYNAMIC_EVAL}) - set(limits), limits

    def describe(self) -> str:
        return self.config.describe()

    def preferred_precision(self, device: torch.device) -> str:
        # cuDNN already runs fp32 RNNs on TF32 tensor cores: bf16 was no faster
        # (bench/precision.py)
        return "fp32"

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """ids [B, T] -> input vectors [B, T, H_in]."""
        if self.embedding is None:
            return F.one_hot(ids, self.config.vocab_size).to(self.head.weight.dtype)
        return self.embedding(ids)

    def forward(self, ids: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        return self.forward_inputs(self.embed(ids), state)

    def forward_inputs(self, x: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        """From input vectors x [B, T, H_in] (so gradients can be taken w.r.t. them)."""
        out, new = self.rnn(x, self._to_layers(state))  # [B, T, H_out]
        return self.head(self.drop(out)), new if isinstance(new, tuple) else (new,)

    def adapting_forward(
        self, ids: torch.Tensor, state: State = None
    ) -> tuple[torch.Tensor, State, Callable[[], None]]:
        """forward for dynamic evaluation: the same logits; `finish()` after backward completes
        the gradients. At batch 1 on a CPU the fused cells unroll (models/adapt.py), whose
        backward skips the module's per-step weight gradients."""
        unroll = self.config.cell in FUSED and not self.config.proj_size and not self.training
        if unroll and ids.shape[0] == 1 and ids.device.type == "cpu":
            out, new, finish = unrolled_layers(self.rnn, self.embed(ids), state, self.config.cell)
            return self.head(out), new, finish
        logits, new = self.forward(ids, state)
        return logits, new, lambda: None

    def _to_layers(self, state: State) -> object:
        """The contract's tuple as the layers take it: (h, c) for nn.LSTM, else h."""
        if state is None or len(state) == 2:
            return state
        return state[0]

    def state_shapes(self, batch_size: int) -> dict[str, tuple[int, ...]]:
        cfg = self.config
        sizes = {"h": cfg.output_size, "c": cfg.hidden_size}
        return {n: (cfg.num_layers, batch_size, sizes[n]) for n in self.state_names}

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        """Zeros, the same state torch uses when none is given."""
        device = device if device is not None else self.head.weight.device
        dtype = self.head.weight.dtype
        shapes = self.state_shapes(batch_size).values()
        return tuple(torch.zeros(s, device=device, dtype=dtype) for s in shapes)

    def stepper(self, state: State) -> Stepper:
        """On a CPU, the fused cells step through their own weights as matrix-vector products
        (models/step.py: faster than the module at batch 1, bench/sampling.py); elsewhere, and for a
        projected LSTM or a minimal cell, through forward."""
        state = state if state is not None else self.init_state(1)
        fast = self.config.cell in FUSED and not self.config.proj_size
        if fast and self.head.weight.device.type == "cpu" and state[0].shape[1] == 1:
            return fused_stepper(self.rnn, self.embedding, self.head, self.config.cell, state)
        return forward_stepper(self, state)

    def state_labels(self) -> dict[str, str]:
        """What the cell view can show, name -> label: h, an LSTM's c, a minimal cell's gates."""
        gates = GATE_LABELS.get(self.config.cell, {})
        return {**{n: STATE_LABELS[n] for n in self.state_names}, **gates}

    @torch.no_grad()
    def cell_states(self, ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """ids [1, T] -> name -> [layers, T, units]: every layer's state after each token."""
        inputs = self.embed(ids)  # [1, T, H_in]
        if isinstance(self.rnn, MinRNN):  # every step's h and gates come out of the scan
            return {n: v[:, 0] for n, v in self.rnn.trace(inputs)[2].items()}
        # nn.LSTM returns the last layer's h for all positions but c only at the end, so the
        # text is stepped token by token through the fused kernel (one call per token)
        steps, state = [], None
        for t in range(ids.shape[1]):
            _, state = self.forward_inputs(inputs[:, t : t + 1], state)
            steps.append(state)
        return {
            n: torch.stack([s[i][:, 0] for s in steps], 1) for i, n in enumerate(self.state_names)
        }

    def export_module(self) -> nn.Module:
        """The model with its state as separate tensors in and out (ONNX has no tuples)."""
        return _ExplicitState(self)


class _ExplicitState(nn.Module):
    def __init__(self, model: RecurrentLM) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits, new = self.model(ids, tuple(state))
        return (logits, *new)
