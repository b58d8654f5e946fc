"""Where the code runs and how it is seeded: device choice (cuda > mps > cpu) and seeding live
here and nowhere else."""

from __future__ import annotations

import torch

from nextchar.config import DEVICE_CHOICES
from nextchar.errors import NextcharError


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def pick_device(name: str = "auto") -> torch.device:
    """Resolve a device name; `auto` prefers cuda, then mps, then cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise NextcharError(
                f"--device {name} was asked for but this PyTorch sees no CUDA GPU; "
                "use --device cpu (or auto), or install a CUDA build of torch (see README)"
            )
        return torch.device(name)
    if name == "mps":
        if not _mps_available():
            raise NextcharError(
                "--device mps was asked for but MPS is not available here; use --device cpu or auto"
            )
        return torch.device("mps")
    raise NextcharError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")


def cpu_bf16_supported() -> bool:
    """Whether this CPU runs oneDNN's bf16 kernels (AVX-512 BW/VL/DQ or newer). Without them
    (an AVX2-only CPU) the bf16 LSTM primitive cannot even be created, and bf16 elsewhere is
    emulated and slow."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch without the probe: assume the worst
        return False


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global generators (CPU and every CUDA device) and return a CPU generator
    with the same seed for code that wants an explicit one."""
    torch.manual_seed(seed)  # also seeds all CUDA devices
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator
