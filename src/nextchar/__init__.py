"""nextchar: next-character prediction with recurrent neural networks.

The public API, re-exported from the modules that own each concept.
"""

from nextchar.config import ModelConfig
from nextchar.errors import NextcharError
from nextchar.lab import LabConfig, LabResult, run_lab
from nextchar.models import RecurrentLM, build_model, count_parameters
from nextchar.runtime import pick_device, seed_everything
from nextchar.shapes import ShapeArgs, explain
from nextchar.tokenizers import CharTokenizer, Tokenizer, tokenizer_from_dict

__version__ = "0.1.0"

__all__ = [
    "CharTokenizer",
    "LabConfig",
    "LabResult",
    "ModelConfig",
    "NextcharError",
    "RecurrentLM",
    "ShapeArgs",
    "Tokenizer",
    "__version__",
    "build_model",
    "count_parameters",
    "explain",
    "pick_device",
    "run_lab",
    "seed_everything",
    "tokenizer_from_dict",
]
