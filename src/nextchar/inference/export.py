"""Export a recurrent checkpoint to one self-contained .onnx file, which `models.load` runs
back through onnxruntime (models/onnx.py), so predict / sample / eval work on it unchanged.

The graph takes the state as explicit inputs and returns it as outputs, so a caller can step
one token at a time; batch and sequence axes are dynamic. The state tensors are the model's
own (`state_names`, each [layers, batch, units]):

    ids [B, T] int64, h [L, B, H] (, c [L, B, H] for LSTM)
      -> logits [B, T, V], h_out [L, B, H] (, c_out [L, B, H])

The tokenizer, model config and state layout travel inside the file (ONNX metadata, key
"nextchar"), so the .onnx file alone is enough to sample from it.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from nextchar.core.errors import NextcharError
from nextchar.core.options import flag
from nextchar.core.outputs import check_new, replacing
from nextchar.models import count_parameters, load_checkpoint, require
from nextchar.models.contract import ONNX
from nextchar.models.onnx import METADATA_KEY, ONNX_FORMAT, load_onnx, require_package

OPSET = 17
# ONNX's RNN/LSTM/GRU operators that onnxruntime runs start at opset 7; torch's TorchScript
# exporter (the one that keeps the sequence axis dynamic) writes up to opset 20.
MIN_OPSET, MAX_OPSET = 7, 20


def _check_out(out: Path, opset: int, overwrite: bool) -> None:
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise NextcharError(
            f"{flag('opset')} must be in {MIN_OPSET}..{MAX_OPSET} (default {OPSET}), got {opset}"
        )
    if out.suffix != ".onnx":
        raise NextcharError(f"the output file should end in .onnx, got {out}")
    check_new([out], overwrite)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NextcharError(f"cannot write {out} ({exc.strerror}); choose another path") from None


def export_onnx(
    checkpoint: str | Path, out: str | Path, opset: int = OPSET, overwrite: bool = False
) -> Path:
    """Write the checkpoint's model as ONNX to `out` (whole or not at all; an existing file
    only with `overwrite`)."""
    onnx = require_package("onnx")
    loaded = load_checkpoint(checkpoint, device="cpu")
    model = loaded.model.float().eval()
    require(model, ONNX, "ONNX export")
    out = Path(out)
    _check_out(out, opset, overwrite)
    names = list(model.state_names)
    state = model.init_state(2)
    ids = torch.zeros(2, 3, dtype=torch.long)
    axes: dict[str, dict[int, str]] = {
        "ids": {0: "batch", 1: "sequence"},
        "logits": {0: "batch", 1: "sequence"},
    }
    for name in names:
        axes[name] = axes[f"{name}_out"] = {1: "batch"}
    with replacing(out) as tmp:
        # The TorchScript exporter (dynamo=False) maps nn.LSTM/GRU/RNN onto ONNX's own
        # LSTM/GRU/RNN operators with a dynamic sequence axis; the dynamo exporter unrolls the
        # recurrence and fixed the sequence length to the example's (measured, torch 2.13).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model.export_module(),
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
            "model": model.config.to_dict(),
            "tokenizer": loaded.tokenizer.to_dict(),
            "state": names,
            "state_shapes": {n: list(s) for n, s in model.state_shapes(1).items()},
            "parameters": count_parameters(model),
            "source": str(loaded.path),
        }
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(info, ensure_ascii=False)
        proto.doc_string = f"nextchar {model.describe()} language model; state inputs {names}"
        onnx.save(proto, str(tmp))
        load_onnx(tmp)  # only a file onnxruntime runs takes the name
    return out
