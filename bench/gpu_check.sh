#!/usr/bin/env bash
# One prepared check for a CUDA machine: the CUDA-marked tests, the lab on the GPU, and a short
# training run in fp32 and bf16 with sample/eval. Usage (from the repository root, with a CUDA
# build of torch installed): bash bench/gpu_check.sh [TRAIN_TEXT [VAL_TEXT]]
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
text=${1:-../shared/data/shakespeare_train.txt}
val=${2:-$(dirname "$text")/shakespeare_val.txt}
nc() { python3 -m nextchar "$@"; }
python3 - <<'PY'
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name(0), "bf16", torch.cuda.is_bf16_supported())
PY
python3 -m pytest -q -m cuda tests -p no:cacheprovider
for cell in rnn lstm gru; do
  nc lab --device cuda --cell "$cell" --every 250
done
out=$(mktemp -d)
for precision in fp32 bf16; do
  nc train "$text" --out "$out/$precision" --device cuda --precision "$precision" \
    --hidden-size 512 --num-layers 2 --batch-size 64 --seq-len 128 --max-steps 300 \
    --eval-every 100 --quiet
  python3 - "$out/$precision/metrics.jsonl" "$precision" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
speed = statistics.median(r["chars_per_sec"] for r in rows if "chars_per_sec" in r)
print(f"{sys.argv[2]}: {speed:,.0f} chars/s on cuda, last val bpc {[r for r in rows if 'val_bpc' in r][-1]['val_bpc']:.3f}")
PY
done
nc sample "$out/bf16" --prime "ROMEO:" --length 200 --device cuda --seed 0
nc eval "$out/bf16" "$val" --device cuda
