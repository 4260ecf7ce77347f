#!/usr/bin/env bash
# Installs the Debian 12 packages rmt-serve needs; skips what is already there.
# Idempotent: a machine with everything installed runs no apt-get at all.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache
  libtorch-dev libopenblas0-openmp   # LibTorch links Debian's BLAS; OpenBLAS makes it ~16x faster
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev prometheus-cpp-dev nlohmann-json3-dev libutf8proc-dev libssl-dev
  prometheus                         # promtool: the metrics test checks the exposition format
  nginx python3-yaml                 # tests/deploy: nginx.conf live, manifest checks
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-torch              # golden data and make bench-compare, never in the serving path
  python3-venv                       # scripts/torch_wheel.sh: the LibTorch 2.x build's venv
  fortunes                           # natural-language noise text
  gnuplot-nox                        # rmt-eval draws its accuracy plots
  clang libclang-rt-14-dev           # make fuzz: clang++ and libFuzzer/ASan/UBSan runtimes
  clang-format clang-tidy            # make test checks the formatting; make tidy
  libhiredis-dev                     # --session_store=redis://: the synchronous client
  redis-server                       # session_store_test starts its own
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install_deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
