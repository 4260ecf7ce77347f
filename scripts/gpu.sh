#!/usr/bin/env bash
# Builds, tests and measures rmt-serve on a CUDA machine, in one call:
#
#   scripts/gpu.sh [BUILD_DIR]        # default build-gpu
#
# Configures against the CUDA LibTorch of the installed PyTorch 2.x wheel
# (torch.utils.cmake_prefix_path), builds the model library, tools, tests and
# benchmarks, runs the fast tests and prints the GPU benchmark tables
# (docs/benchmarks-gpu.md is this script's output).
#
# The model library also needs abseil, nlohmann-json and utf8proc (and the
# tests GoogleTest). Where they are not installed, unpack the Debian packages
# (`dpkg -x pkg.deb DIR` for each) into one folder and point RMT_DEPS_ROOT at
# it. The server is built too when that folder also holds gRPC, protobuf and
# prometheus-cpp (RMT_BUILD_SERVER=ON); otherwise only the model side.
#
# Not measured here yet: this repository has had no GPU to run it on, so the
# script is untested on CUDA (see issue 5).
set -euo pipefail
cd "$(dirname "$0")/.."

build=${1:-build-gpu}
python=${PYTHON:-python3}

torch_prefix=$("$python" -c 'import torch; print(torch.utils.cmake_prefix_path)')
torch_version=$("$python" -c 'import torch; print(torch.__version__)')
cxx11_abi=$("$python" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
"$python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' || {
  echo "gpu.sh: torch $torch_version sees no CUDA device" >&2
  exit 1
}
if [ "$cxx11_abi" != 1 ]; then
  # Debian's abseil and gRPC use the C++11 std::string ABI; a wheel built
  # with the old ABI cannot link against them.
  echo "gpu.sh: torch $torch_version uses the pre-C++11 ABI; Debian libraries will not link" >&2
  exit 1
fi

prefix="$torch_prefix"
server=OFF
if [ -n "${RMT_DEPS_ROOT:-}" ]; then
  deps=$(cd "$RMT_DEPS_ROOT" && pwd)
  prefix="$prefix;$deps/usr;$deps/usr/lib/x86_64-linux-gnu/cmake"
  export PKG_CONFIG_PATH="$deps/usr/lib/x86_64-linux-gnu/pkgconfig:$deps/usr/share/pkgconfig:${PKG_CONFIG_PATH:-}"
  export LD_LIBRARY_PATH="$deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
  export PATH="$deps/usr/bin:$PATH"
  if [ -d "$deps/usr/lib/x86_64-linux-gnu/cmake/grpc" ]; then server=ON; fi
fi
server=${RMT_BUILD_SERVER:-$server}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
echo "torch $torch_version ($torch_prefix), server build: $server"

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" -DRMT_BUILD_SERVER="$server" -DRMT_CUDA=ON
cmake --build "$build" -j "$(nproc)"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"

bench="$build/bench/rmt-bench"
echo
echo "## BERT-base size, random weights, bf16 compute, bf16 memory"
"$bench" --device cuda --dtype bfloat16 --memory_dtype bfloat16 --configs base \
  --batches 1,8,32,64,128 --sessions 1,8,32,64,128 \
  --long_document_tokens 2043904 --state_sessions 10000
if [ -d models/rmt-babi ]; then
  echo
  echo "## Bundled reference model, bf16 compute"
  "$bench" --device cuda --dtype bfloat16 --configs models/rmt-babi \
    --batches 1,8,32,64,128 --sessions 1,8,32,64,128 \
    --long_document_tokens 2043904 --state_sessions 10000
  echo
  echo "## Bundled reference model: accuracy with bf16 compute on CUDA"
  "$build/train/rmt-eval" --model models/rmt-babi --device cuda --dtype bfloat16 \
    --segments 1,8,32 --samples 500
fi
