"""nextchar: next-character prediction with recurrent neural networks.

The public API, re-exported from the modules that own each concept.
"""

__version__ = "0.1.0"  # first: submodules read it while the package is still importing

from nextchar.checkpoint import load, load_checkpoint, save_checkpoint
from nextchar.config import ModelConfig, SampleConfig, TrainConfig
from nextchar.errors import NextcharError
from nextchar.evaluate import EvalResult, evaluate_text
from nextchar.generate import predict_next, sample
from nextchar.lab import LabConfig, LabResult, run_lab
from nextchar.models import RecurrentLM, build_model, count_parameters
from nextchar.runtime import pick_device, seed_everything
from nextchar.shapes import ShapeArgs, explain
from nextchar.tokenizers import (
    ByteTokenizer,
    CharTokenizer,
    Tokenizer,
    WordTokenizer,
    tokenizer_from_dict,
)
from nextchar.train import train

__all__ = [
    "ByteTokenizer",
    "CharTokenizer",
    "EvalResult",
    "LabConfig",
    "LabResult",
    "ModelConfig",
    "NextcharError",
    "RecurrentLM",
    "SampleConfig",
    "ShapeArgs",
    "Tokenizer",
    "TrainConfig",
    "WordTokenizer",
    "__version__",
    "build_model",
    "count_parameters",
    "evaluate_text",
    "explain",
    "load",
    "load_checkpoint",
    "pick_device",
    "predict_next",
    "run_lab",
    "sample",
    "save_checkpoint",
    "seed_everything",
    "tokenizer_from_dict",
    "train",
]
