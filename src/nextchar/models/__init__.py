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
    "detach_state",
    "model_device",
]


def build_model(config: ModelConfig) -> RecurrentLM:
    """A fresh, randomly initialised model for `config` (seed torch first for repeatability)."""
    if config.vocab_size is None:
        raise ValueError("ModelConfig.vocab_size must be set (from the tokenizer) to build")
    return RecurrentLM(config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters live (inputs are moved there)."""
    return next(model.parameters()).device
