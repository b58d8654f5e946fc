"""torch's Adam and AdamW, stepped without importing torch._dynamo.

torch.optim wraps every `step` in a function that imports torch._dynamo (seconds on a laptop
CPU, about as long as importing torch itself) to insert a graph break for torch.compile, and marks a
few Optimizer methods with torch._disable_dynamo, which imports it on their first call. Nothing
here compiles an optimizer (compile compiles the model), so these classes run the very same
update -- torch's own step function, under no_grad as the wrapper would -- and the import
happens only in a process that compiles. The state dicts are torch's, so checkpoints and
`torch.optim` load each other's.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import torch

_ADAM_STEP = torch.optim.Adam.step.__wrapped__  # type: ignore[attr-defined]
_ADAMW_STEP = torch.optim.AdamW.step.__wrapped__  # type: ignore[attr-defined]


def _skip_disable_dynamo() -> None:
    """Fill torch._disable_dynamo's per-function cache with the plain function for the
    Optimizer methods it wraps, unless torch._dynamo is loaded already (torch.compile)."""
    if "torch._dynamo" in sys.modules:
        return
    for name in ("add_param_group", "zero_grad", "state_dict", "load_state_dict"):
        original = getattr(getattr(torch.optim.Optimizer, name), "__wrapped__", None)
        if original is not None and not hasattr(original, "__dynamo_disable"):
            original.__dynamo_disable = original  # the attribute torch._compile caches


class _NoDynamoImport:
    """Mixed into an optimizer class: the _disable_dynamo cache filled before it builds."""

    def __init__(self, params: Any, **kwargs: Any) -> None:
        _skip_disable_dynamo()
        super().__init__(params, **kwargs)  # type: ignore[call-arg]


def _step(raw: Callable[..., Any]) -> Callable[..., Any]:
    """torch's own step under no_grad, as its wrapper runs it, less the torch._dynamo import."""

    def step(self: Any, closure: Callable[[], float] | None = None) -> Any:
        with torch.no_grad():
            return raw(self, closure)

    return step


class Adam(_NoDynamoImport, torch.optim.Adam):
    """torch.optim.Adam, stepped without the torch._dynamo import (see the module)."""

    step = _step(_ADAM_STEP)  # type: ignore[assignment]


class AdamW(_NoDynamoImport, torch.optim.AdamW):
    """torch.optim.AdamW, stepped without the torch._dynamo import (see the module)."""

    step = _step(_ADAMW_STEP)  # type: ignore[assignment]
