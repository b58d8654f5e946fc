"""Checkpoint directories: the one place that knows their format.

    CKPT/config.json          format + version, model config, tokenizer, training config, step
    CKPT/model.safetensors    weights (no pickle)
    CKPT/...                  a run's last/ also holds the resume state (training/resume.py)

A run directory holds `last/` and `best/` checkpoints; `models.load()` accepts either a
checkpoint or a run directory (and then takes `best/`). Every write goes to a temporary sibling
directory that is renamed into place, so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from nextchar.core.errors import NextcharError
from nextchar.text.tokenizers import Tokenizer

FORMAT = "nextchar-checkpoint"
FORMAT_VERSION = 1
CONFIG, WEIGHTS = "config.json", "model.safetensors"


@dataclass
class Checkpoint:
    """What a checkpoint directory holds once loaded."""

    model: nn.Module
    tokenizer: Tokenizer
    meta: dict[str, Any]  # the whole config.json
    path: Path


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    tokenizer: Tokenizer,
    meta: dict[str, Any] | None = None,
    write_more: Callable[[Path], None] | None = None,
) -> Path:
    """Write a checkpoint directory atomically (temporary directory, then rename);
    `write_more(tmp)` adds files of its own (a run's resume state) before the rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        config = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model": model.config.to_dict(),
            "tokenizer": tokenizer.to_dict(),
            **(meta or {}),
        }
        (tmp / CONFIG).write_text(
            json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        save_file(weights_to_save(model), str(tmp / WEIGHTS))
        if write_more is not None:
            write_more(tmp)
        _swap_into_place(tmp, path)
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        # torch.save and safetensors on a full disk say "unexpected pos" or "code: 28";
        # every I/O error leaves here as an OSError that names the checkpoint
        if _disk_full(path.parent) or any(s in str(exc) for s in ("unexpected pos", "code: 28")):
            raise OSError(errno.ENOSPC, "No space left on device", str(path)) from None
        if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _disk_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < 2**20
    except OSError:
        return False


def _tied_names(model: nn.Module) -> set[str]:
    """Parameter names that are a second name for a tensor already saved under another
    (an output layer tied to the embedding; GPT-2's lm_head and wte)."""
    every = {name for name, _ in model.named_parameters(remove_duplicate=False)}
    return every - {name for name, _ in model.named_parameters()}


def weights_to_save(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict as independent CPU tensors. cuDNN packs all RNN weights into one flat
    buffer (so they are views of one storage) and tied weights share a tensor; safetensors
    stores neither, so each tensor is copied out and a tied duplicate is left out (the
    model re-ties it by construction)."""
    tied = _tied_names(model)
    return {
        name: t.detach().to("cpu", copy=True).contiguous()
        for name, t in model.state_dict().items()
        if name not in tied
    }


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load model.safetensors into `model`: every tensor must match, and only tied
    duplicates may be absent (they are the same tensor as one that is loaded)."""
    state = load_file(str(path))
    result = model.load_state_dict(state, strict=False)
    missing = set(result.missing_keys) - _tied_names(model)
    if missing or result.unexpected_keys:
        raise RuntimeError(
            f"weights do not match the model: missing {sorted(missing)[:3]}, "
            f"unexpected {sorted(result.unexpected_keys)[:3]}"
        )


def recover(path: str | Path) -> None:
    """Finish what a killed save left behind: a checkpoint whose two renames were cut in
    between (`path` gone, `path.old` whole) is renamed back, and temporary directories of
    unfinished writes are removed. Run before resuming; only the process that writes the run
    may call it."""
    path = Path(path)
    old = path.with_name(path.name + ".old")
    if not path.exists() and old.is_dir():
        os.rename(old, path)
    for orphan in path.parent.glob(f".{path.name}.*.tmp"):
        if orphan.is_dir():
            shutil.rmtree(orphan, ignore_errors=True)


def _swap_into_place(tmp: Path, path: Path) -> None:
    # A directory cannot be replaced in one atomic step, so the old one is first renamed
    # aside; if we die between the two renames, `_resolve` still finds `path.old`.
    old = path.with_name(path.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if path.exists():
        os.rename(path, old)
    os.rename(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def _resolve(path: Path) -> Path:
    """A checkpoint directory from a checkpoint or run directory path."""
    if not path.exists():
        old = path.with_name(path.name + ".old")
        if old.is_dir():  # a save was interrupted between its two renames
            return old
        raise NextcharError(f"no checkpoint at {path}: the directory does not exist")
    if not path.is_dir():
        raise NextcharError(
            f"{path} is a file; a checkpoint is a directory with {CONFIG} and {WEIGHTS}"
        )
    if (path / CONFIG).exists():
        return path
    for name in ("best", "last"):
        if (path / name / CONFIG).exists() or (path / f"{name}.old" / CONFIG).exists():
            return _resolve(path / name)
    raise NextcharError(
        f"{path} is not a nextchar checkpoint or run directory (no {CONFIG}, best/ or last/ inside)"
    )


def read_meta(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """(checkpoint directory, parsed config.json), with the format checked."""
    ckpt = _resolve(Path(path))
    try:
        meta = json.loads((ckpt / CONFIG).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NextcharError(
            f"{ckpt / CONFIG} is unreadable or not JSON ({exc}); the checkpoint is damaged"
        ) from None
    except RecursionError:  # json nests deeper than Python's stack: not a file we wrote
        raise NextcharError(
            f"{ckpt / CONFIG} nests too deeply; the checkpoint is damaged"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise NextcharError(
            f"{ckpt} is not a nextchar checkpoint ({CONFIG} has no 'format': '{FORMAT}')"
        )
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise NextcharError(
            f"{ckpt / CONFIG}: format_version must be a whole number such as {FORMAT_VERSION}, "
            f"got {version!r}; the checkpoint is damaged"
        )
    if version > FORMAT_VERSION:
        raise NextcharError(
            f"{ckpt} has checkpoint format version {version}; this nextchar "
            f"reads up to {FORMAT_VERSION}: upgrade nextchar"
        )
    for key in ("model", "tokenizer"):
        if not isinstance(meta.get(key), dict):
            raise NextcharError(f"{ckpt / CONFIG} has no '{key}' object; the checkpoint is damaged")
    return ckpt, meta
