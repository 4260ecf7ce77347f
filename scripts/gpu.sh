#!/usr/bin/env bash
# Builds, tests and measures rmt-serve on a CUDA machine in one call, with
# nothing there but a PyTorch 2.x wheel, nvcc, cmake and ninja (no Debian
# packages, no internet, no fortunes):
#
#   scripts/gpu_deps.sh                  # here: unpack the -dev packages
#   scripts/gpu.sh [BUILD_DIR]           # there: default build-gpu
#
# Its output is docs/benchmarks-gpu.md: versions, the GPU tests, then the
# tables. Stages run in order under `timeout`; the first that fails stops
# the script with a message naming it (exit 1), the GPU tests before any
# number is printed. 199 s on one H100 (docs/benchmarks-gpu.md);
# scripts/gpu_rehearsal.sh proves it here up to the first CUDA call.
#
# Environment:
#   PYTHON                 the interpreter with torch (default python3)
#   RMT_DEPS_ROOT          the unpacked packages (default build-gpu-deps)
#   RMT_DATASHEET_TFLOPS   the GPU's dense bf16 datasheet peak, where the
#                          table below does not know the GPU
#   RMT_JOBS               build jobs (default: all cores)
#   RMT_GPU_DEADLINE       seconds the whole script may take (default 570:
#                          the device tool stops a command at 600); each
#                          stage's limit is cut to what is left
#
# Only the model side is built (model library, rmt-bench, rmt-eval,
# rmt-train, the GPU tests): the server needs gRPC, which the GPU machine
# does not have. A later call on the same machine finds the build in
# BUILD_DIR, so training there is one more command:
#   LD_LIBRARY_PATH=build-gpu-deps/usr/lib/x86_64-linux-gnu \
#     BUILD_DIR/train/rmt-train --device cuda --noise_file tests/data/noise.txt ...
# scripts/gpu_rehearsal.sh runs this script here, with Debian's packages
# hidden, as far as a machine without a GPU goes: up to the first CUDA call.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${1:-build-gpu}
python=${PYTHON:-python3}
deps=${RMT_DEPS_ROOT:-build-gpu-deps}
jobs=${RMT_JOBS:-$(nproc)}
noise=tests/data/noise.txt  # the machine has no /usr/share/games/fortunes
started=$SECONDS
deadline=${RMT_GPU_DEADLINE:-570}
export PYTHONWARNINGS=ignore  # torch warns on import when numpy is missing

die() {
  echo "gpu.sh: $*" >&2
  exit 1
}

# stage NAME SECONDS COMMAND...: one step, its time, and a clear stop.
# COMMAND may be a function of this script: timeout runs it in a child bash
# (the functions and the variables they read are exported).
stage() {
  local name=$1 limit=$2
  shift 2
  local start=$SECONDS status=0
  local left=$((deadline - (SECONDS - started) - 5))
  [ "$left" -ge 10 ] || die "no time left for stage '$name' (RMT_GPU_DEADLINE=$deadline)"
  [ "$limit" -le "$left" ] || limit=$left
  echo
  echo "## $name"
  echo
  if declare -F "$1" >/dev/null; then
    timeout --kill-after=10 "$limit" bash -euo pipefail -c '"$@"' stage "$@" ||
      status=$?
  else
    timeout --kill-after=10 "$limit" "$@" || status=$?
  fi
  if [ "$status" = 124 ] || [ "$status" = 137 ]; then
    die "stage '$name' ran past its ${limit} s limit"
  elif [ "$status" != 0 ]; then
    die "stage '$name' failed (exit $status)"
  fi
  echo
  echo "($name: $((SECONDS - start)) s; $((SECONDS - started)) s in all)"
}

# --- What is here: checked before anything is built. ---
# Images often keep the toolkit out of PATH.
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi
for tool in cmake ninja nvcc timeout; do
  command -v "$tool" >/dev/null || die "$tool is not on the PATH"
done
cxx=${CXX:-$(command -v c++ || command -v g++ || true)}
[ -n "$cxx" ] || die "no C++ compiler (c++ or g++) on the PATH"
export CXX=$cxx
# Debian 12's abseil needs glibc 2.34 or newer.
glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
if [ -n "$glibc" ] && [ "$(printf '%s\n2.34\n' "$glibc" | sort -V | head -1)" != 2.34 ]; then
  die "glibc $glibc is older than the 2.34 Debian 12's libraries need"
fi
[ -f "$deps/.packages" ] ||
  die "$deps holds no unpacked packages: run scripts/gpu_deps.sh here and carry $deps"
[ -f "$noise" ] || die "$noise is missing"
deps=$(cd "$deps" && pwd)
lib="$deps/usr/lib/x86_64-linux-gnu"
"$python" -c 'import torch' 2>/dev/null || die "$python cannot import torch"

versions() {
  echo "- host: $(uname -srm), $(nproc) cores, glibc ${glibc:-?}; $("$CXX" --version | head -1)"
  echo "- $(cmake --version | head -1), ninja $(ninja --version)"
  echo "- nvcc: $(nvcc --version | grep -o 'release [0-9.]*, V[0-9.]*')"
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm \
      --format=csv,noheader | sed 's/^/- GPU (nvidia-smi): /' ||
      echo "- GPU (nvidia-smi): the query failed"
  else
    echo "- GPU (nvidia-smi): nvidia-smi is not installed"
  fi
  # None of these touches a device.
  "$python" - <<'EOF'
import torch
print(f"- torch {torch.__version__} ({torch.__file__.rsplit('/', 2)[0]}), "
      f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
      f"C++11 ABI {int(torch._C._GLIBCXX_USE_CXX11_ABI)}")
b = torch.backends.cuda
print(f"- SDPA backends enabled: flash {b.flash_sdp_enabled()}, "
      f"memory-efficient {b.mem_efficient_sdp_enabled()}, "
      f"cuDNN {b.cudnn_sdp_enabled()}, math {b.math_sdp_enabled()} "
      "(the one each step uses: 'attention kernel' below)")
EOF
  echo "- Debian packages from $deps:"
  sed 's/^/  - /' "$deps/.packages"
}
export -f versions
export python deps glibc
stage "Versions" 60 versions

torch_prefix=$("$python" -c 'import torch; print(torch.utils.cmake_prefix_path)')
[ "$("$python" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')" = 1 ] ||
  die "this torch uses the pre-C++11 ABI; Debian's abseil will not link"

# --- Build: everything through the wheel and $deps alone. ---
export CUDACXX=${CUDACXX:-$(command -v nvcc)}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
gpu_test_binaries="cuda_model_test cuda_engine_test cuda_train_test"
targets="rmt-bench rmt-eval rmt-train $gpu_test_binaries"
configure() {
  mkdir -p "$build"
  # No pkg-config: the unpacked packages' .pc files name /usr, not $deps.
  # RMT_WERROR off: the compiler here may warn where g++ 12 does not, and a
  # new warning must not cost the run. From GCC 13 on, some headers of this
  # abseil (20220623) miss <cstdint>; the forced include costs the
  # precompiled header (GCC skips it after another -include), so only there.
  local flags=""
  if "$CXX" -v 2>&1 | grep -q "^gcc version" &&
    [ "$("$CXX" -dumpversion | cut -d. -f1)" -ge 13 ]; then
    flags="-include cstdint"
  fi
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$torch_prefix;$deps/usr;$lib/cmake" \
    -DCMAKE_LIBRARY_PATH="$lib" -DCMAKE_CXX_FLAGS="$flags" \
    -DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=ON \
    -DRMT_BUILD_SERVER=OFF -DRMT_CUDA=ON -DRMT_WERROR=OFF >"$build/configure.log" 2>&1 ||
    { tail -40 "$build/configure.log"; return 1; }
  grep -E "rmt: LibTorch" "$build/configure.log" || true
}
# Ninja's progress lines would push everything else out of the device
# tool's 12,000-character reply: they go to a log, its tail on failure.
build_targets() {
  # shellcheck disable=SC2086 # $targets is a list of target names
  cmake --build "$build" -j "$jobs" --target $targets >"$build/build.log" 2>&1 ||
    { tail -40 "$build/build.log"; return 1; }
  echo "built $targets ($(grep -c '^\[' "$build/build.log") steps; log: $build/build.log)"
}
export -f configure build_targets
export build torch_prefix lib jobs targets gpu_test_binaries
stage "Configure" 180 configure
stage "Build ($targets)" 480 build_targets

# --- The first CUDA call. A machine without a GPU stops here. ---
gpu_info() {
  "$python" - <<'EOF'
import sys, torch
if not torch.cuda.is_available():
    sys.exit("no CUDA device is visible to torch "
             f"{torch.__version__} (CUDA_VISIBLE_DEVICES and the driver)")
p = torch.cuda.get_device_properties(0)
print(f"- device 0: {p.name}, {p.total_memory / 2**30:.1f} GiB, "
      f"{p.multi_processor_count} SMs, compute capability {p.major}.{p.minor}")
EOF
}
export -f gpu_info
stage "GPU" 60 gpu_info

# Dense bf16 peaks from NVIDIA's datasheets (their sparsity figures halved).
datasheet=${RMT_DATASHEET_TFLOPS:-$("$python" - <<'EOF'
import torch
name = torch.cuda.get_device_name(0)
peaks = [("H100 PCIe", 756.5), ("H100 NVL", 835.5), ("H100", 989.4),
         ("H200", 989.4), ("GH200", 989.4), ("A100", 312.0), ("L40S", 362.1)]
print(next((str(v) for k, v in peaks if k in name), "0"))
EOF
)} || die "could not read the GPU's name for its datasheet peak"
echo "datasheet dense bf16 peak: ${datasheet} TFLOP/s (0: unknown GPU; set RMT_DATASHEET_TFLOPS)"

# --- Correctness first: a GPU that computes wrong numbers measures nothing. ---
gpu_tests() {
  local test log
  for test in $gpu_test_binaries; do
    # The whole output in a log, so a test that hangs still leaves a trace.
    log="$build/$test.log"
    "$build/tests/$test" --gtest_brief=1 >"$log" 2>&1 || { tail -60 "$log"; return 1; }
    tail -3 "$log"
    # On a GPU machine a skipped GPU test is a failure: it measured nothing.
    if grep -q "SKIPPED" "$log"; then
      grep -A2 SKIPPED "$log"
      echo "$test skipped tests on a machine with a GPU"
      return 1
    fi
  done
}
export -f gpu_tests
stage "GPU tests (fp32 and bf16 parity, engine interleavings, CUDA graphs = eager, memory pool, training = CPU)" 240 gpu_tests

bench=("$build/bench/rmt-bench" --device cuda --dtype bfloat16
  --min_seconds 1 --batches 1,8,32,64,128 --sessions 1,8,32,64,128
  --state_sessions 10000 --datasheet_tflops "$datasheet")
# The kernel profiles (torch profiler) say where the device time of the
# engine goes at 1, 32 and 128 sessions (one session: the long document's
# kind of work; 32 and more: the MFU target's), from the same run.
stage "BERT-base size (12 layers, hidden 768, 10 memory tokens, 499-token segments), random weights, bf16 compute and memory" 300 \
  "${bench[@]}" --configs base --memory_dtype bfloat16 --long_document_tokens 2043904 \
  --profile_sessions 1,32,128
stage "Bundled model (models/rmt-babi), bf16 compute" 180 \
  "${bench[@]}" --configs models/rmt-babi --long_document_tokens 2043904

# The bundled model's accuracy in bf16 on the GPU against float32 on this
# machine's CPU, same samples (test seeds, noise from $noise).
accuracy() {
  local eval=("$build/train/rmt-eval" --model models/rmt-babi
    --noise_file "$noise" --tasks memorize,detect,reasoning
    --segments 1,8,32 --samples 500 --seed 1)
  "${eval[@]}" --device cuda --dtype bfloat16 --table "$build/eval-cuda.md" >/dev/null
  "${eval[@]}" --device cpu --dtype float32 --table "$build/eval-cpu.md" >/dev/null
  echo "CUDA, bf16:"
  cat "$build/eval-cuda.md"
  echo
  echo "CPU, float32:"
  cat "$build/eval-cpu.md"
  echo
  if diff -q "$build/eval-cuda.md" "$build/eval-cpu.md" >/dev/null; then
    echo "The two tables are identical."
  else
    echo "The tables differ:"
    diff "$build/eval-cpu.md" "$build/eval-cuda.md" || true
  fi
}
export -f accuracy
export noise
stage "Bundled model accuracy: CUDA bf16 against CPU float32" 180 accuracy
echo
echo "gpu.sh: done in $((SECONDS - started)) s"
