"""Building a model from its config, and the checks every model passes once built."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from nextchar.core.config import ModelConfig
from nextchar.core.errors import NextcharError, broken_weights
from nextchar.core.options import flag
from nextchar.models.recurrent import RecurrentLM


def build_model(config: ModelConfig) -> nn.Module:
    """A fresh, randomly initialised model for `config` (seed torch first for repeatability)."""
    if config.vocab_size is None:
        raise ValueError("a model config's vocab_size must be set (from the tokenizer) to build")
    with allocating(f"a {config.describe()} model"):
        if config.kind == "gpt2":
            from nextchar.models.gpt2 import build_gpt2  # transformers only when asked for

            return build_gpt2(config)
        return RecurrentLM(config)


@contextlib.contextmanager
def allocating(
    what: str, sizes: tuple[str, ...] = ("hidden_size", "num_layers", "embedding_dim")
) -> Iterator[None]:
    """Turn the allocator's refusal (sizes from a flag or a hand-edited config.json, such as
    hidden_size 10000000) into one line instead of a traceback from deep inside torch."""
    try:
        yield
    except (MemoryError, RuntimeError) as exc:
        message = str(exc)
        if not isinstance(exc, MemoryError) and not any(
            hint in message for hint in ("can't allocate", "out of memory", "Failed to allocate")
        ):
            raise
        wanted = message.partition("tried to allocate ")[2].split(" bytes")[0]
        size = f" ({int(wanted) / 2**30:,.1f} GiB at once)" if wanted.isdigit() else ""
        raise NextcharError(
            f"not enough memory for {what}{size}; choose smaller sizes "
            f"({', '.join(flag(name) for name in sizes)})"
        ) from None


def training_bytes(config: ModelConfig, batch_size: int, seq_len: int) -> int:
    """Estimated peak bytes of training `config` on [batch_size, seq_len] windows: weights,
    gradients and two AdamW moments (4 copies of float32 parameters), and the activations
    the backward pass keeps -- every layer's gates and states over the window and the logits
    with their gradient. Counted on PyTorch's meta device: no memory is touched."""
    with torch.device("meta"):
        parameters = sum(p.numel() for p in build_model(config).parameters())
    width = getattr(config, "hidden_size", None) or getattr(config, "n_embd", 1)
    layers = getattr(config, "num_layers", None) or getattr(config, "n_layer", 1)
    per_position = layers * width * 12 + (config.vocab_size or 0) * 3  # gates, states, logits
    return 4 * (4 * parameters + batch_size * seq_len * per_position)


def check_finite(model: nn.Module, source: str) -> None:
    """Refuse a model whose weights hold NaN or infinity: every number it would give (bits,
    probabilities, samples) would be NaN. Such weights come from a run that diverged."""
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise broken_weights(f"{source}: the weights ({name})")


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
