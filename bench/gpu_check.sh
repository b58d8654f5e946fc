#!/usr/bin/env bash
# One prepared check for a CUDA machine, printing a summary at the end:
#   1. the test suite's CUDA-marked tests (LSTM fp32/bf16, GPT-2 bf16, torchrun + NCCL)
#   2. the lab on the GPU for rnn / lstm / gru
#   3. training and evaluation speed in fp32, bf16 and bf16 + torch.compile (bench/precision.py)
#   4. bf16 autocast on this machine's CPU against fp32 (does it pay here? AMX?)
#   5. a GPU-trained checkpoint exported to ONNX samples what the checkpoint samples
#   6. the sizing probe's choice on the GPU, its chars/s and the bpc after SIZED_BUDGET
#      (default 8m): `nextchar train shakespeare --max-time 8m` as a user runs it
# Usage, from the repository root, with a CUDA build of torch and nextchar's dependencies:
#   bash bench/gpu_check.sh [DATA_DIR]      (DATA_DIR holds shakespeare_{train,val}.txt)
# Set LOG_DIR to keep each step's full output there.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
data=${1:-../shared/data}
logs=${LOG_DIR:-$(mktemp -d)}
mkdir -p "$logs"
summary=()

step() {  # step NAME COMMAND...: run, log, remember pass/fail and seconds
  local name=$1 start=$SECONDS status
  shift
  echo "=== $name"
  "$@" 2>&1 | tee "$logs/$name.log"
  status=${PIPESTATUS[0]}
  summary+=("$(printf '%-14s %-4s %4ds' "$name" "$([ "$status" = 0 ] && echo ok || echo FAIL)" $((SECONDS - start)))")
}

python3 - <<'PY'
import platform, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())
print("python", platform.python_version(), "| cpu threads", torch.get_num_threads())
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0), "| bf16", torch.cuda.is_bf16_supported())
PY

cuda_tests=$(grep -l "mark.cuda" tests/*.py | tr '\n' ' ')
# shellcheck disable=SC2086
step cuda-tests python3 -m pytest -q -m cuda -p no:cacheprovider $cuda_tests

step precision-gpu python3 bench/precision.py --device cuda --data "$data" \
  --settings fp32 bf16 bf16+compile --hidden 1024 --layers 2 --batch 128 --seq 128 --steps 100

step precision-cpu python3 bench/precision.py --device cpu --data "$data" \
  --settings fp32 bf16 --hidden 512 --layers 2 --batch 64 --seq 128 --steps 12 --eval-chars 30000

lab() { for cell in rnn lstm gru; do python3 -m nextchar lab --device cuda --cell "$cell" --every 250 || return 1; done; }
step lab-cuda lab

export_check() {
  local out
  out=$(mktemp -d)
  python3 -m nextchar train "$data/shakespeare_train.txt" --val-file "$data/shakespeare_val.txt" \
    --out "$out/run" --device cuda --cell lstm --hidden-size 512 --num-layers 2 \
    --max-steps 200 --eval-every 100 --quiet || return 1
  python3 -m nextchar eval "$out/run" "$data/shakespeare_val.txt" --device cuda || return 1
  python3 -m nextchar export "$out/run" "$out/m.onnx" || return 1
  python3 -m nextchar sample "$out/run" --device cpu --greedy --prime "ROMEO:" --length 300 >"$out/a"
  python3 -m nextchar sample "$out/m.onnx" --greedy --prime "ROMEO:" --length 300 >"$out/b"
  cat "$out/b"
  cmp "$out/a" "$out/b" && echo "ONNX greedy sample == checkpoint greedy sample"
}
step export-onnx export_check

sized() {
  local out
  out=$(mktemp -d)
  python3 -m nextchar train "$data/shakespeare_train.txt" --val-file "$data/shakespeare_val.txt" \
    --out "$out/run" --device cuda --max-time "${SIZED_BUDGET:-8m}" --quiet
}
step sized-train sized

echo "=== summary"
printf '%s\n' "${summary[@]}"
! printf '%s\n' "${summary[@]}" | grep -q FAIL
