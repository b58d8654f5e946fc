"""OnnxLM: a model written by `nextchar export` and run by onnxruntime, behind the same
LanguageModel contract: forward(ids [B, T], state) -> (logits [B, T, V], state), with the state
names and shapes the file records. It has no torch parameters; tensors come back on the CPU.

onnx and onnxruntime are optional (`pip install "nextchar[onnx]"`), imported when used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from nextchar.core.config import ModelConfig, model_config_from_dict
from nextchar.core.errors import NextcharError, optional
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
from nextchar.text.tokenizers import Tokenizer, tokenizer_from_dict

METADATA_KEY = "nextchar"
ONNX_FORMAT = "nextchar-onnx"


def require_package(module: str) -> Any:
    return optional(module, "ONNX", "onnx")


class OnnxLM(nn.Module):
    context_size = None
    capabilities: frozenset[str] = frozenset()
    limits: ClassVar[dict[str, str]] = {
        CELL_VIEW: "an exported file keeps only its inputs and outputs; serve the checkpoint",
        BEAM_SEARCH: "beam search is GPT-2's; recurrent models sample",
        ONNX: "it is an ONNX file already",
        EMBEDDING_INIT: "an exported file cannot be trained",
        DYNAMIC_EVAL: "an exported file cannot be trained; evaluate the checkpoint",
    }
    embedding = None

    def __init__(self, session: Any, config: ModelConfig, info: dict[str, Any]) -> None:
        super().__init__()
        self.session = session
        self.config = config
        self.parameter_count = info.get("parameters")  # the weights are in the session
        self.state_names = tuple(info["state"])
        self.shapes = {n: tuple(s) for n, s in info["state_shapes"].items()}
        self.layers, self.units = config.num_layers, config.hidden_size

    def describe(self) -> str:
        return f"{self.config.describe()} (onnx)"

    def preferred_precision(self, device: torch.device) -> str:
        return "fp32"

    def state_shapes(self, batch_size: int) -> dict[str, tuple[int, ...]]:
        # recorded with batch 1; the batch axis is dim 1 (the contract's layout)
        return {n: (s[0], batch_size, *s[2:]) for n, s in self.shapes.items()}

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        return tuple(torch.zeros(s) for s in self.state_shapes(batch_size).values())

    def stepper(self, state: State) -> Stepper:
        return forward_stepper(self, state)

    def forward(self, ids: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        state = self.init_state(ids.shape[0]) if state is None else state
        feed = {"ids": ids.detach().cpu().long().numpy()}
        feed.update(
            {
                n: s.detach().cpu().float().numpy()
                for n, s in zip(self.state_names, state, strict=True)
            }
        )
        logits, *new = (torch.from_numpy(a) for a in self.session.run(None, feed))
        return logits, tuple(new)


def is_onnx_path(path: str | Path) -> bool:
    return str(path).endswith(".onnx")


def load_onnx(path: str | Path) -> tuple[OnnxLM, Tokenizer]:
    """(model, tokenizer) from a file written by `nextchar export`."""
    ort = require_package("onnxruntime")
    path = Path(path)
    if not path.is_file():
        raise NextcharError(f"no ONNX file at {path}")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: shape warnings would interleave with text
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types for bad files
        first = str(exc).splitlines()[0][:200]
        raise NextcharError(f"{path} is not a loadable ONNX model ({first})") from None
    again = "export the checkpoint again with: nextchar export CKPT OUT.onnx"
    raw = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    try:
        info = json.loads(raw) if raw else {}
    except (ValueError, RecursionError):
        raise NextcharError(f"{path}: its nextchar metadata is not JSON; {again}") from None
    if not isinstance(info, dict) or info.get("format") != ONNX_FORMAT:
        raise NextcharError(
            f"{path} was not written by `nextchar export` (no tokenizer inside); {again}"
        )
    try:  # an edited file: every key and type it needs, checked here rather than mid-sample
        config = model_config_from_dict(info["model"])
        if "state_shapes" not in info:  # written before the shapes were recorded (0.1.0)
            sizes = {"h": config.output_size, "c": config.hidden_size}
            info["state_shapes"] = {n: [config.num_layers, 1, sizes[n]] for n in info["state"]}
        model, tokenizer = OnnxLM(session, config, info), tokenizer_from_dict(info["tokenizer"])
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise NextcharError(
            f"{path}: its nextchar metadata is damaged ({type(exc).__name__}: {exc}); {again}"
        ) from None
    if tokenizer.vocab_size != config.vocab_size:
        raise NextcharError(
            f"{path}: its tokenizer has {tokenizer.vocab_size} tokens but the model "
            f"{config.vocab_size} outputs; {again}"
        )
    return model.eval(), tokenizer
