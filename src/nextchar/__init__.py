"""nextchar: next-character prediction with recurrent neural networks.

The public API, one name per concept: the commands as functions (`lab`, `shapes`, `train`,
`load`, `sample`, `predict`, `evaluate`: api.py), the loaded `Model`, the configs that say
what a model and a run are, and the one error type. Everything else is reached through its
part (`nextchar.text.tokenizers`, `nextchar.models`, ...: docs/maintainers.md). Names are
imported on first use (PEP 562), so the command line answers its help and version
without importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nextchar.core import __version__

# public name -> the module that owns it
_API = {
    "lab": "nextchar.api",
    "shapes": "nextchar.api",
    "train": "nextchar.api",
    "load": "nextchar.api",
    "sample": "nextchar.api",
    "predict": "nextchar.api",
    "evaluate": "nextchar.api",
    "Model": "nextchar.api",
    "RecurrentConfig": "nextchar.core.config",
    "GPT2Config": "nextchar.core.config",
    "TrainConfig": "nextchar.core.config",
    "SampleConfig": "nextchar.core.commands",
    "NextcharError": "nextchar.core.errors",
}

__all__ = [
    "GPT2Config",
    "Model",
    "NextcharError",
    "RecurrentConfig",
    "SampleConfig",
    "TrainConfig",
    "__version__",
    "evaluate",
    "lab",
    "load",
    "predict",
    "sample",
    "shapes",
    "train",
]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'nextchar' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # what type checkers and IDEs see; nothing is imported at run time
    from nextchar.api import Model, evaluate, lab, load, predict, sample, shapes, train
    from nextchar.core.commands import SampleConfig
    from nextchar.core.config import GPT2Config, RecurrentConfig, TrainConfig
    from nextchar.core.errors import NextcharError
