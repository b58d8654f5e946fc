"""ONNX, both ways: export a recurrent checkpoint to one self-contained .onnx file, and load
such a file back as a LanguageModel backed by onnxruntime (so predict / sample / eval work on
it unchanged).

The graph takes the state as explicit inputs and returns it as outputs, so a caller can step
one token at a time; batch and sequence axes are dynamic:

    ids [B, T] int64, h [L, B, H] (, c [L, B, H] for LSTM)
      -> logits [B, T, V], h_out [L, B, H] (, c_out [L, B, H])

The tokenizer and model config travel inside the file (ONNX metadata, key "nextchar"), so the
.onnx file alone is enough to sample from it.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nextchar.checkpoint import load_checkpoint
from nextchar.config import ModelConfig
from nextchar.errors import NextcharError
from nextchar.models import State, count_parameters
from nextchar.tokenizers import Tokenizer, tokenizer_from_dict

METADATA_KEY = "nextchar"
ONNX_FORMAT = "nextchar-onnx"
INSTALL_HINT = 'pip install "nextchar[onnx]"'
OPSET = 17
# ONNX's RNN/LSTM/GRU operators that onnxruntime runs start at opset 7; torch's TorchScript
# exporter (the one that keeps the sequence axis dynamic) writes up to opset 20.
MIN_OPSET, MAX_OPSET = 7, 20


def _require(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise NextcharError(f"ONNX needs the {module} package: {INSTALL_HINT}") from None


def state_names(cell: str) -> list[str]:
    return ["h", "c"] if cell == "lstm" else ["h"]


class _ExplicitState(nn.Module):
    """The model with its state as separate tensors in and out (ONNX has no tuples)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        carried = (state[0], state[1]) if len(state) == 2 else state[0]
        logits, new = self.model(ids, carried)
        return (logits, *new) if isinstance(new, tuple) else (logits, new)


def export_onnx(checkpoint: str | Path, out: str | Path, opset: int = OPSET) -> Path:
    """Write the checkpoint's model as ONNX to `out` (atomically: temp file, then rename)."""
    onnx = _require("onnx")
    loaded = load_checkpoint(checkpoint, device="cpu")
    model, config = loaded.model.float().eval(), loaded.model.config
    if config.kind != "recurrent":
        raise NextcharError(
            f"ONNX export covers RNN/LSTM/GRU checkpoints; {checkpoint} is a {config.kind} model "
            "(for GPT-2 use Hugging Face optimum: optimum-cli export onnx)"
        )
    if config.proj_size:
        raise NextcharError(
            f"{checkpoint} is an LSTM with --proj-size {config.proj_size}; ONNX's LSTM operator "
            "has no projection, so it cannot be exported (train without --proj-size)"
        )
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise NextcharError(
            f"--opset must be in {MIN_OPSET}..{MAX_OPSET} (default {OPSET}), got {opset}"
        )
    out = Path(out)
    if out.suffix != ".onnx":
        raise NextcharError(f"the output file should end in .onnx, got {out}")
    if out.is_dir():
        raise NextcharError(f"{out} is a directory; name the .onnx file to write")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NextcharError(f"cannot write {out} ({exc.strerror}); choose another path") from None
    names = state_names(config.cell)
    state = model.init_state(2)
    state = state if isinstance(state, tuple) else (state,)
    ids = torch.zeros(2, 3, dtype=torch.long)
    axes: dict[str, dict[int, str]] = {
        "ids": {0: "batch", 1: "sequence"},
        "logits": {0: "batch", 1: "sequence"},
    }
    for name in names:
        axes[name] = axes[f"{name}_out"] = {1: "batch"}
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        # The TorchScript exporter (dynamo=False) maps nn.LSTM/GRU/RNN onto ONNX's own
        # LSTM/GRU/RNN operators with a dynamic sequence axis; the dynamo exporter unrolls the
        # recurrence and fixed the sequence length to the example's (measured, torch 2.13).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _ExplicitState(model),
                (ids, *state),
                str(tmp),
                input_names=["ids", *names],
                output_names=["logits", *[f"{n}_out" for n in names]],
                dynamic_axes=axes,
                opset_version=opset,
                dynamo=False,
            )
        proto = onnx.load(str(tmp))
        info = {
            "format": ONNX_FORMAT,
            "model": config.to_dict(),
            "tokenizer": loaded.tokenizer.to_dict(),
            "state": names,
            "parameters": count_parameters(model),
            "source": str(loaded.path),
        }
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(info, ensure_ascii=False)
        proto.doc_string = f"nextchar {config.cell} language model; state inputs {names}"
        onnx.save(proto, str(tmp))
        load_onnx(tmp)  # only a file onnxruntime runs takes the name
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


class OnnxLM(nn.Module):
    """An exported model run by onnxruntime behind the LanguageModel interface:
    forward(ids [B, T], state) -> (logits [B, T, V], state). It has no parameters; tensors come
    back on the CPU."""

    def __init__(self, session: Any, config: ModelConfig, parameter_count: int | None) -> None:
        super().__init__()
        self.session = session
        self.config = config
        self.parameter_count = parameter_count  # the weights are in the session, not torch
        self.names = state_names(config.cell)

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        cfg = self.config
        h = torch.zeros(cfg.num_layers, batch_size, cfg.output_size)
        if cfg.cell == "lstm":
            return h, torch.zeros(cfg.num_layers, batch_size, cfg.hidden_size)
        return h

    def forward(self, ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        state = self.init_state(ids.shape[0]) if state is None else state
        parts = state if isinstance(state, tuple) else (state,)
        feed = {"ids": ids.detach().cpu().long().numpy()}
        feed.update(
            {n: s.detach().cpu().float().numpy() for n, s in zip(self.names, parts, strict=True)}
        )
        logits, *new = (torch.from_numpy(a) for a in self.session.run(None, feed))
        return logits, (new[0], new[1]) if len(new) == 2 else new[0]


def is_onnx_path(path: str | Path) -> bool:
    return str(path).endswith(".onnx")


def load_onnx(path: str | Path) -> tuple[OnnxLM, Tokenizer]:
    """(model, tokenizer) from a file written by export_onnx."""
    ort = _require("onnxruntime")
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
    raw = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    info = json.loads(raw) if raw else {}
    if info.get("format") != ONNX_FORMAT:
        raise NextcharError(
            f"{path} was not written by `nextchar export` (no tokenizer inside); "
            "export the checkpoint again with: nextchar export CKPT --format onnx OUT.onnx"
        )
    config = ModelConfig.from_dict(info["model"])
    model = OnnxLM(session, config, info.get("parameters"))
    return model.eval(), tokenizer_from_dict(info["tokenizer"])
