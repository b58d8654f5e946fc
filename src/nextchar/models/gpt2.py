"""GPT2LM: HuggingFace transformers' GPT2LMHeadModel behind the same interface as the
recurrent models -- forward(ids [B, T], state) -> (logits [B, T, V], state) -- where the state
is the key/value cache, so sampling costs one step per token here too.

Unlike a recurrent state, the cache cannot grow forever: GPT-2 sees at most `context_size`
positions (1,024 for the released models). Evaluation therefore slides a window over long
texts, and sampling re-primes from the most recent tokens when the cache is full.

transformers is an optional dependency (`pip install "nextchar[gpt2]"`), imported only here.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import socket
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from nextchar.core.config import ModelConfig, model_config
from nextchar.core.errors import NextcharError, optional
from nextchar.core.options import flag
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
from nextchar.text.tokenizers import BPETokenizer


def _transformers() -> Any:
    transformers = optional("transformers", "GPT-2", "gpt2")
    transformers.logging.set_verbosity_error()  # our errors are the ones users read
    transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bar per load
    return transformers


class GPT2LM(nn.Module):
    """A transformers causal LM (GPT-2 family) as a nextchar LanguageModel. `config` is
    nextchar's ModelConfig (kind "gpt2") that rebuilds it for a checkpoint."""

    state_names = ()  # the cache is not carried from one training window to the next
    capabilities = frozenset({BEAM_SEARCH})
    limits: ClassVar[dict[str, str]] = {
        CELL_VIEW: "a transformer has no recurrent cells to show; serve an RNN/LSTM/GRU",
        ONNX: "for GPT-2 use Hugging Face optimum: optimum-cli export onnx",
        EMBEDDING_INIT: f"{flag('embeddings')} initialises a recurrent model's input "
        "embedding only",
        DYNAMIC_EVAL: "it adapts a recurrent model, whose state carries the text; GPT-2's "
        "window does not",
    }

    def __init__(self, hf_model: nn.Module, config: ModelConfig) -> None:
        super().__init__()
        self.hf = hf_model
        self.config = config
        self.context_size: int = int(hf_model.config.n_positions)
        self.layers, self.units = config.n_layer, config.n_embd
        # transformers 5.2x renamed `past_key_values` to `cache`; accept either release
        params = inspect.signature(hf_model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"

    @property
    def embedding(self) -> nn.Embedding:
        """The token embedding (wte), as RecurrentLM.embedding: `nextchar neighbors` reads it."""
        return self.hf.get_input_embeddings()

    def stepper(self, state: State) -> Stepper:
        return forward_stepper(self, state)

    def forward(self, ids: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        if self.training:  # training windows are independent: no cache to build or carry
            return self.hf(input_ids=ids, use_cache=False).logits, None
        out = self.hf(input_ids=ids, use_cache=True, **{self._cache_arg: state})
        cache = out["cache"] if "cache" in out else out["past_key_values"]
        return out.logits, cache

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> None:
        return None  # an empty cache

    def state_shapes(self, batch_size: int) -> dict[str, tuple[int, ...]]:
        return {}

    def describe(self) -> str:
        return self.config.describe()

    def preferred_precision(self, device: torch.device) -> str:
        # bf16 autocast trains GPT-2 much faster on a GPU at the same validation bpc
        # (bench/precision.py); CPUs gain only with AMX, so they stay in fp32
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return "bf16" if cuda_bf16 else "fp32"

    @torch.no_grad()
    def beam_search(self, prime_ids: list[int], config: Any) -> list[int]:
        """The `config.num_beams` beam search of transformers' generate: the new ids."""
        self.eval()
        room = self.context_size - min(len(prime_ids), self.context_size - 1)
        length = min(config.length, room)
        ids = torch.tensor([prime_ids[-(self.context_size - 1) :]], device=self.hf.device)
        out = self.hf.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=length,
            min_new_tokens=length,
            num_beams=config.num_beams,
            do_sample=False,
            repetition_penalty=config.repetition_penalty,
            pad_token_id=self.hf.config.eos_token_id,
        )
        return out[0, ids.shape[1] :].tolist()


def build_gpt2(config: ModelConfig) -> GPT2LM:
    """A randomly initialised GPT-2 of the configured size (from scratch, or the skeleton a
    checkpoint's weights are loaded into)."""
    transformers = _transformers()
    hf_config = transformers.GPT2Config(
        vocab_size=config.vocab_size,
        n_positions=config.block_size,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        resid_pdrop=config.dropout,
        embd_pdrop=config.dropout,
        attn_pdrop=config.dropout,
        # GPT-2's tanh GELU as one fused PyTorch op: the same function as "gelu_new", and
        # a faster training step on a CPU
        activation_function="gelu_pytorch_tanh",
        bos_token_id=0,  # a BPE learned here puts <|endoftext|> at id 0
        eos_token_id=0,
    )
    return GPT2LM(transformers.GPT2LMHeadModel(hf_config), config)


def config_of(hf_model: nn.Module, init: str | None) -> ModelConfig:
    """nextchar's ModelConfig for a loaded transformers GPT-2."""
    c = hf_model.config
    return model_config(
        vocab_size=int(c.vocab_size),
        kind="gpt2",
        n_layer=int(c.n_layer),
        n_head=int(c.n_head),
        n_embd=int(c.n_embd),
        block_size=int(c.n_positions),
        dropout=float(c.resid_pdrop),
        init=init,
    )


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a connection to the Hugging Face hub opens at all. Without one, transformers
    retries for half a minute before it says so; this asks once, in under `timeout` seconds.
    Behind a proxy the proxy decides, so the hub is assumed reachable."""
    proxies = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
    if any(os.environ.get(name) for name in proxies):
        return True
    endpoint = urllib.parse.urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname or "", port), timeout=timeout).close()
        return True
    except (OSError, UnicodeError):
        return False


def _check_model_type(reference: str) -> None:
    """A local transformers directory must hold a GPT-2: a BERT's weights would load as noise."""
    config = Path(reference) / "config.json"
    if not config.is_file():
        return
    try:
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError, RecursionError):
        raise NextcharError(f"{config} is not a readable JSON object") from None
    if model_type != "gpt2":
        raise NextcharError(
            f"{reference!r} holds a {model_type!r} model; nextchar runs GPT-2 models "
            "(model_type 'gpt2') and its own checkpoints"
        )


def _from_pretrained(reference: str, fetch: Callable[[bool], Any]) -> Any:
    """`fetch(local_only)` from the local directory or cache first, then -- unless
    HF_HUB_OFFLINE is set or the hub cannot be reached -- from the hub; every failure is one
    NextcharError."""
    _check_model_type(reference)
    try:
        return fetch(True)
    except Exception as first:  # a damaged directory fails in many ways (truncated file,
        # edited sizes, a pickle refused by weights_only): all are the user's file, not a bug
        why = str(first).splitlines()[0][:120] if str(first) else type(first).__name__
        if Path(reference).exists():
            raise NextcharError(
                f"cannot load {reference!r} as GPT-2: its files are damaged, incomplete or "
                f"refused ({why}); write the directory again with save_pretrained"
            ) from None
        if _offline():
            raise NextcharError(
                f"cannot load {reference!r} as GPT-2: no such checkpoint directory here and "
                f"not in the Hugging Face cache ({why}); HF_HUB_OFFLINE is set, so nothing is "
                "downloaded: download it into a folder where there is internet (hf download) "
                "and copy the folder here, or train a small GPT-2 with nextchar (docs/gpt2.md, "
                '"Without internet")'
            ) from None
    if not _hub_reachable():
        raise NextcharError(
            f"{reference!r} is not a checkpoint or run directory here (check the path), not in "
            "the Hugging Face cache, and the hub cannot be reached from this machine: download "
            "it into a folder where there is internet (hf download) and copy the folder here, "
            'or train a small GPT-2 with nextchar (docs/gpt2.md, "Without internet")'
        )
    try:
        return fetch(False)
    except Exception as exc:  # network errors come in many types
        raise NextcharError(
            f"cannot load {reference!r} as GPT-2: not a checkpoint directory here, not in the "
            "Hugging Face cache, and the download failed "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:120]}); check the name and the "
            "network, or give a directory written by save_pretrained"
        ) from None


def pretrained_on_disk(reference: str | Path, cache_dir: str | Path | None = None) -> bool:
    """Whether this GPT-2 loads without the network: a save_pretrained directory, or a hub
    name whose config and weights are in the local Hugging Face cache. Asks no server."""
    if Path(reference).is_dir():
        return (Path(reference) / "config.json").is_file()
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # no transformers, so no hub client either
        return False

    def cached(name: str) -> bool:
        return isinstance(try_to_load_from_cache(str(reference), name, cache_dir=cache_dir), str)

    return cached("config.json") and (cached("model.safetensors") or cached("pytorch_model.bin"))


def load_pretrained_tokenizer(reference: str | Path) -> BPETokenizer:
    """The tokenizer of a transformers GPT-2 (directory or hub name), as a BPETokenizer."""
    transformers = _transformers()
    reference = str(reference)
    hf_tokenizer = _from_pretrained(
        reference,
        lambda local: transformers.AutoTokenizer.from_pretrained(reference, local_files_only=local),
    )
    backend = getattr(hf_tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise NextcharError(f"{reference!r} has no fast (Rust) tokenizer; nextchar needs one")
    if backend.get_vocab_size() < 2:  # transformers builds an empty one when files are missing
        raise NextcharError(
            f"{reference!r} has no tokenizer (tokenizer.json, or vocab.json and merges.txt); "
            "save it beside the model with tokenizer.save_pretrained(DIR)"
        )
    return BPETokenizer(backend)


def load_pretrained(reference: str | Path, device: torch.device) -> tuple[GPT2LM, BPETokenizer]:
    """GPT-2 weights and tokenizer from a local directory (save_pretrained) or a hub name such
    as "gpt2": the local cache first, then -- unless HF_HUB_OFFLINE is set -- a download."""
    transformers = _transformers()
    reference = str(reference)
    hf_model, info = _from_pretrained(
        reference,
        lambda local: transformers.GPT2LMHeadModel.from_pretrained(
            reference, local_files_only=local, output_loading_info=True
        ),
    )
    # transformers fills weights it cannot find with random ones and only logs it; a model
    # that is partly noise must not pass for a pretrained one
    missing = [k for k in info.get("missing_keys", ()) if not k.startswith("lm_head")]
    if missing or info.get("mismatched_keys"):
        raise NextcharError(
            f"{reference!r}: the weights do not fit a GPT-2 of its config.json "
            f"(missing {len(missing)} tensors such as {missing[:2]}, "
            f"{len(info.get('mismatched_keys', ()))} of another shape); the directory is "
            "damaged or holds another model"
        )
    tokenizer = load_pretrained_tokenizer(reference)
    if tokenizer.vocab_size > hf_model.config.vocab_size:
        raise NextcharError(
            f"{reference!r}: the tokenizer has {tokenizer.vocab_size} tokens but the model "
            f"only {hf_model.config.vocab_size} outputs"
        )
    model = GPT2LM(hf_model, config_of(hf_model, reference))
    return model.to(device).eval(), tokenizer


def is_pretrained_reference(path: str | Path) -> bool:
    """Whether `path` names a transformers model: a directory whose config.json has a
    `model_type`, or a hub name ("gpt2", "openai-community/gpt2") that is not a local path."""
    text = str(path)
    config = Path(text) / "config.json"
    if config.is_file():
        with contextlib.suppress(OSError, ValueError, RecursionError):
            return "model_type" in json.loads(config.read_text(encoding="utf-8"))
        return False
    parts = text.split("/")
    looks_like_path = (
        text.startswith((".", "/", "~"))
        or os.sep in text.replace("/", "")
        or len(parts) > 2
        or Path(parts[0]).is_dir()
        or Path(text).exists()
    )
    return not looks_like_path and all(parts)
