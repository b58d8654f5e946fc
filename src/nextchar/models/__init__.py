"""Models: the LanguageModel contract (models/contract.py), building one from its config, and
loading one from a checkpoint, an exported ONNX file or a transformers GPT-2."""

from nextchar.models.build import (
    allocating,
    build_model,
    check_finite,
    count_parameters,
    model_device,
)
from nextchar.models.contract import (
    LanguageModel,
    State,
    detach_state,
    require,
    state_from_tensors,
    state_tensors,
)
from nextchar.models.loading import load, load_checkpoint, load_pretrained, load_tokenizer
from nextchar.models.recurrent import RecurrentLM

__all__ = [
    "LanguageModel",
    "RecurrentLM",
    "State",
    "allocating",
    "build_model",
    "check_finite",
    "count_parameters",
    "detach_state",
    "load",
    "load_checkpoint",
    "load_pretrained",
    "load_tokenizer",
    "model_device",
    "require",
    "state_from_tensors",
    "state_tensors",
]
