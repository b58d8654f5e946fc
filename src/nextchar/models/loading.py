"""One way in for every model nextchar runs: `load(path_or_name)` takes a nextchar checkpoint
or run directory, an `.onnx` file from `nextchar export`, or a transformers GPT-2 (a
save_pretrained directory or a hub name such as "gpt2")."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from safetensors import SafetensorError
from torch import nn

from nextchar.core.config import model_config_from_dict
from nextchar.core.errors import NextcharError
from nextchar.core.runtime import pick_device
from nextchar.models.build import build_model, check_finite
from nextchar.models.checkpoint import WEIGHTS, Checkpoint, load_weights, read_meta
from nextchar.models.onnx import is_onnx_path, load_onnx
from nextchar.text.tokenizers import Tokenizer, tokenizer_from_dict


def load_checkpoint(path: str | Path, device: str | torch.device = "auto") -> Checkpoint:
    """A nextchar checkpoint (or a run directory's best/) with its model built and loaded."""
    ckpt, meta = read_meta(path)
    try:
        model_config = model_config_from_dict(meta["model"])
        tokenizer = tokenizer_from_dict(meta["tokenizer"])
    except NextcharError as exc:
        raise NextcharError(f"{ckpt / 'config.json'}: {exc}; the checkpoint is damaged") from None
    if model_config.vocab_size is None:
        raise NextcharError(
            f"{ckpt / 'config.json'}: the model records no vocab_size; the checkpoint is damaged"
        )
    if model_config.vocab_size != tokenizer.vocab_size:
        raise NextcharError(
            f"{ckpt}: the model has {model_config.vocab_size} outputs but the "
            f"tokenizer {tokenizer.vocab_size} symbols; the checkpoint is damaged"
        )
    model = build_model(model_config)  # sizes come from a file: allocation errors are ours
    weights = ckpt / WEIGHTS
    if not weights.exists():
        raise NextcharError(f"{ckpt} has no {WEIGHTS}; the checkpoint is incomplete")
    try:
        load_weights(model, weights)
    except (SafetensorError, OSError, ValueError) as exc:
        raise NextcharError(
            f"{weights} cannot be read ({str(exc).splitlines()[0]}); "
            "the file is truncated or not a safetensors file"
        ) from None
    except RuntimeError as exc:  # load_state_dict: names or shapes differ
        raise NextcharError(
            f"{weights} does not match its config.json ({str(exc).splitlines()[0][:160]})"
        ) from None
    check_finite(model, str(ckpt))
    device = pick_device(device) if isinstance(device, str) else device
    model.to(device).eval()
    return Checkpoint(model, tokenizer, meta, ckpt)


def load_pretrained(reference: str | Path, device: torch.device) -> tuple[nn.Module, Tokenizer]:
    """A transformers GPT-2 and its tokenizer (optional dependency), weights checked."""
    from nextchar.models.gpt2 import load_pretrained as load_gpt2

    model, tokenizer = load_gpt2(reference, device)
    check_finite(model, str(reference))
    return model, tokenizer


def _check_transformers_for(path: str | Path) -> None:
    if importlib.util.find_spec("transformers") is None and not Path(path).exists():
        raise NextcharError(
            f"no checkpoint at {path}: the directory does not exist (for a Hugging Face "
            f'GPT-2 such as "gpt2": pip install "nextchar[gpt2]")'
        )


def _is_pretrained(path: str | Path) -> bool:
    from nextchar.models.gpt2 import is_pretrained_reference

    return is_pretrained_reference(path)


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Only the tokenizer of a checkpoint, run directory, exported .onnx file or GPT-2."""
    if is_onnx_path(path):
        return load_onnx(path)[1]
    if _is_pretrained(path):
        _check_transformers_for(path)
        from nextchar.models.gpt2 import load_pretrained_tokenizer

        return load_pretrained_tokenizer(path)
    _, meta = read_meta(path)
    return tokenizer_from_dict(meta["tokenizer"])


def load(path: str | Path, device: str | torch.device = "auto") -> tuple[nn.Module, Tokenizer]:
    """A ready (model, tokenizer) in eval mode from a checkpoint or run directory, a file
    written by `nextchar export` (.onnx, run by onnxruntime on the CPU), or a transformers
    GPT-2: a save_pretrained directory or a hub name such as "gpt2"."""
    if is_onnx_path(path):
        return load_onnx(path)
    if _is_pretrained(path):
        _check_transformers_for(path)
        return load_pretrained(path, pick_device(device) if isinstance(device, str) else device)
    loaded = load_checkpoint(path, device)
    return loaded.model, loaded.tokenizer
