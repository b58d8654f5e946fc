#!/usr/bin/env bash
# One prepared check for a CUDA machine: the CUDA-marked tests and the lab on the GPU.
# Usage: bash bench/gpu_check.sh   (after README's install line, with a CUDA build of torch)
set -euo pipefail
cd "$(dirname "$0")/.."
python - <<'PY'
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name(0))
PY
python -m pytest -q -m cuda tests
for cell in rnn lstm gru; do
  nextchar lab --device cuda --cell "$cell" --every 250
done
