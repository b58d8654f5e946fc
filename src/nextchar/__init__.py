"""nextchar: next-character prediction with recurrent neural networks.

The public API, re-exported from the modules that own each concept; `lab`, `shapes`,
`train`, `load`, `sample` and `predict` are the commands as functions (api.py). Names are
imported on first use (PEP 562), so `nextchar help` and `version` start without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nextchar.core import __version__

# public name -> the module that owns it
_API = {
    "ByteTokenizer": "nextchar.text.tokenizers",
    "CharTokenizer": "nextchar.text.tokenizers",
    "EvalResult": "nextchar.inference.evaluate",
    "LabConfig": "nextchar.core.config",
    "LabResult": "nextchar.classroom.lab",
    "LanguageModel": "nextchar.models",
    "ModelConfig": "nextchar.core.config",
    "NextcharError": "nextchar.core.errors",
    "RecurrentLM": "nextchar.models",
    "SampleConfig": "nextchar.core.config",
    "ShapeConfig": "nextchar.classroom.shapes",
    "Tokenizer": "nextchar.text.tokenizers",
    "TrainConfig": "nextchar.core.config",
    "WordTokenizer": "nextchar.text.tokenizers",
    "build_model": "nextchar.models",
    "count_parameters": "nextchar.models",
    "evaluate_text": "nextchar.inference.evaluate",
    "explain": "nextchar.classroom.shapes",
    "Model": "nextchar.api",
    "lab": "nextchar.api",
    "load": "nextchar.api",
    "predict": "nextchar.api",
    "shapes": "nextchar.api",
    "load_checkpoint": "nextchar.models",
    "pick_device": "nextchar.core.runtime",
    "predict_next": "nextchar.inference.generate",
    "run_lab": "nextchar.classroom.lab",
    "sample": "nextchar.api",
    "save_checkpoint": "nextchar.models.checkpoint",
    "seed_everything": "nextchar.core.runtime",
    "tokenizer_from_dict": "nextchar.text.tokenizers",
    "train": "nextchar.api",
}

__all__ = [
    "ByteTokenizer",
    "CharTokenizer",
    "EvalResult",
    "LabConfig",
    "LabResult",
    "LanguageModel",
    "Model",
    "ModelConfig",
    "NextcharError",
    "RecurrentLM",
    "SampleConfig",
    "ShapeConfig",
    "Tokenizer",
    "TrainConfig",
    "WordTokenizer",
    "__version__",
    "build_model",
    "count_parameters",
    "evaluate_text",
    "explain",
    "lab",
    "load",
    "load_checkpoint",
    "pick_device",
    "predict",
    "predict_next",
    "run_lab",
    "sample",
    "save_checkpoint",
    "seed_everything",
    "shapes",
    "tokenizer_from_dict",
    "train",
]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'nextchar' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # what type checkers and IDEs see; nothing is imported at run time
    from nextchar.api import Model, lab, load, predict, sample, shapes, train
    from nextchar.classroom.lab import LabResult, run_lab
    from nextchar.classroom.shapes import ShapeConfig, explain
    from nextchar.core.config import LabConfig, ModelConfig, SampleConfig, TrainConfig
    from nextchar.core.errors import NextcharError
    from nextchar.core.runtime import pick_device, seed_everything
    from nextchar.inference.evaluate import EvalResult, evaluate_text
    from nextchar.inference.generate import predict_next
    from nextchar.models import (
        LanguageModel,
        RecurrentLM,
        build_model,
        count_parameters,
        load_checkpoint,
    )
    from nextchar.models.checkpoint import save_checkpoint
    from nextchar.text.tokenizers import (
        ByteTokenizer,
        CharTokenizer,
        Tokenizer,
        WordTokenizer,
        tokenizer_from_dict,
    )
