#!/usr/bin/env bash
# Runs scripts/gpu.sh on this machine as the GPU machine would see it: with
# Debian's -dev packages, its LibTorch 1.13, gRPC, pkg-config and fortunes
# hidden (a private mount namespace lays empty folders and files over
# theirs) and the PyTorch wheel of `make build-torch2` as its Python.
# Without a GPU, gpu.sh must build everything and then stop at its first
# CUDA call, saying that no CUDA device is visible: proof that the build
# finds what it needs through the wheel and build-gpu-deps alone.
#
#   scripts/gpu_rehearsal.sh [BUILD_DIR]     # default build-gpu-rehearsal
#
# Needs root (unshare, mount), scripts/torch_wheel.sh's venv (made if
# missing) and the Debian mirror (scripts/gpu_deps.sh). Exit 0 when gpu.sh
# stopped exactly there; 1 otherwise. On a machine with a GPU it runs all of
# gpu.sh instead and passes when gpu.sh does.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${1:-build-gpu-rehearsal}
venv=${TORCH2_BUILD_DIR:-build-torch2}/venv

if [ "${RMT_REHEARSAL_INSIDE:-}" != 1 ]; then
  TORCH2_VENV="$venv" bash scripts/torch_wheel.sh >/dev/null
  scripts/gpu_deps.sh build-gpu-deps
  RMT_REHEARSAL_INSIDE=1 exec unshare --mount --propagation private "$0" "$build"
fi

# --- Inside the namespace: hide what the GPU machine does not have. ---
empty_dir=$(mktemp -d)
empty_file=$(mktemp)  # not executable: hides programs too
hidden=0
hide() {
  local path
  for path in "$@"; do
    # A link is hidden where it points (/usr/bin/pkg-config -> pkgconf).
    path=$(realpath -e "$path" 2>/dev/null) || continue
    if [ -d "$path" ]; then
      mount --bind "$empty_dir" "$path"
    elif [ -f "$path" ]; then
      mount --bind "$empty_file" "$path"
    else
      continue
    fi
    hidden=$((hidden + 1))
  done
}
lib=/usr/lib/x86_64-linux-gnu
shopt -s nullglob
hide /usr/include/{absl,gtest,gmock,nlohmann,torch,ATen,c10,caffe2} \
  /usr/include/{grpc,grpcpp,grpc++,prometheus,google/protobuf} \
  /usr/include/utf8proc.h \
  "$lib"/cmake/{absl,GTest,ATen,Caffe2,Torch,grpc,prometheus-cpp} \
  /usr/share/cmake/nlohmann_json /usr/share/games/fortunes \
  /usr/bin/pkg-config /usr/bin/pkgconf /usr/bin/x86_64-linux-gnu-pkg-config \
  "$lib"/lib{absl_,utf8proc,gtest,gmock,torch,c10,caffe2,grpc,protobuf,prometheus}*
shopt -u nullglob
for path in /usr/include/absl/base/config.h /usr/include/utf8proc.h \
  /usr/share/games/fortunes/fortunes /usr/include/torch/script.h \
  /usr/bin/pkg-config "$lib/libutf8proc.so"; do
  if [ -s "$path" ]; then
    echo "gpu_rehearsal.sh: $path is still visible" >&2
    exit 1
  fi
done
echo "gpu_rehearsal.sh: $hidden Debian folders and files hidden; running gpu.sh"

log=$(mktemp)
status=0
PYTHON="$venv/bin/python" RMT_DEPS_ROOT=build-gpu-deps RMT_JOBS=${RMT_JOBS:-2} \
  scripts/gpu.sh "$build" 2>&1 | tee "$log" || status=$?
if [ "$status" = 0 ]; then
  echo "gpu_rehearsal.sh: gpu.sh ran to the end (this machine has a GPU)"
  exit 0
fi
if grep -q "^## GPU$" "$log" && grep -q "no CUDA device is visible" "$log" &&
  grep -q "stage 'GPU' failed" "$log"; then
  # What gpu.sh would run next, on the CPU: its binaries load with the
  # unpacked libraries alone and the evaluation reads the shipped noise.
  export LD_LIBRARY_PATH="$PWD/build-gpu-deps/usr/lib/x86_64-linux-gnu"
  for test in cuda_model_test cuda_engine_test cuda_train_test; do
    "$build/tests/$test" --gtest_brief=1 | tail -2
  done
  "$build/bench/rmt-bench" --device cpu --configs models/rmt-babi \
    --batches 1 --sessions 1 --min_seconds 0.1 --threads 1 | tail -6
  "$build/train/rmt-eval" --model models/rmt-babi --device cpu \
    --noise_file tests/data/noise.txt --tasks memorize --segments 1 \
    --samples 20 --threads 1 | tail -3
  train_out=$(mktemp -d)
  trap 'rm -rf "$train_out"' EXIT
  "$build/train/rmt-train" --device cpu --noise_file tests/data/noise.txt \
    --out "$train_out" --tasks memorize --hidden 32 --layers 1 \
    --max_steps 2 --eval_every 2 --eval_samples 4 --batch_size 4 --threads 1
  echo "gpu_rehearsal.sh: OK: gpu.sh built everything without Debian's packages and stopped at the first CUDA call; its binaries run here on the CPU"
  exit 0
fi
echo "gpu_rehearsal.sh: gpu.sh failed before its first CUDA call (exit $status)" >&2
exit 1
