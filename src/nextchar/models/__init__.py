"""Model construction: `build_model` is the one place that branches on the model kind."""

from __future__ import annotations

import torch
from torch import nn

from nextchar.config import ModelConfig
from nextchar.models.recurrent import RecurrentLM, State, detach_state

__all__ = [
    "RecurrentLM",
    "State",
    "build_model",
    "count_parameters",
    "describe",
    "detach_state",
    "model_device",
]


def build_model(config: ModelConfig) -> nn.Module:
    """A fresh, randomly initialised model for `config` (seed torch first for repeatability)."""
    if config.vocab_size is None:
        raise ValueError("ModelConfig.vocab_size must be set (from the tokenizer) to build")
    if config.kind == "gpt2":
        from nextchar.models.gpt2 import build_gpt2  # transformers only when asked for

        return build_gpt2(config)
    return RecurrentLM(config)


def describe(config: ModelConfig) -> str:
    """A short name for plots and tables: 'gru 2x384' or 'gpt2 4L 4H 128d'."""
    if config.kind == "gpt2":
        return f"gpt2 {config.n_layer}L {config.n_head}H {config.n_embd}d"
    return f"{config.cell} {config.num_layers}x{config.hidden_size}"


def count_parameters(model: nn.Module) -> int:
    """Parameters of the model; one whose weights live outside torch (an ONNX model run by
    onnxruntime) declares its count as `parameter_count`."""
    declared = getattr(model, "parameter_count", None)
    return declared if declared is not None else sum(p.numel() for p in model.parameters())


def model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters live (inputs are moved there); the CPU for a model with
    none (an ONNX model run by onnxruntime)."""
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")
