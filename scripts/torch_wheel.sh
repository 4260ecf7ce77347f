#!/usr/bin/env bash
# Installs (once) LibTorch 2.x with CUDA from PyPI's torch wheel into an
# ignored virtual environment, and prints its CMake prefix
# (torch.utils.cmake_prefix_path) on stdout; everything else goes to stderr.
#
#   prefix=$(bash scripts/torch_wheel.sh)   # build-torch2/venv/.../torch/share/cmake
#   TORCH2_VENV=/tmp/venv bash scripts/torch_wheel.sh
#
# Idempotent: a venv that already holds exactly these pins is left alone (no
# network). `make build-torch2` configures against the prefix it prints.
#
# The pin: torch 2.11.0 is the first release whose PyPI Linux wheel is built
# for CUDA 13 (2.9 and 2.10 are CUDA 12.8; 2.15 moves to 13.2). Its
# dependencies name exactly the libraries of the CUDA 13.0 toolkit installed
# here (/usr/local/cuda-13.0: runtime 13.0, cuBLAS 13.1.0.3, cuDNN 9.19.0.56,
# NCCL 2.28.9), so the wheel and the toolkit nvcc compiles against agree.
#
# The nvidia-* dependencies: with all its dependencies the wheel is a 2.6 GB
# download (2.1 GB of it nvidia-*, cuda-* and triton wheels, most of which
# duplicate the toolkit); this script downloads 0.77 GB (torch 531 MB,
# cuSPARSELt 170 MB, NVSHMEM 60 MB, the rest small) and the venv is 1.6 GB.
# So torch is installed with --no-deps and only what the toolkit lacks is
# added: libcusparseLt, libnvshmem_host and libcufile (NEEDED by
# libtorch_cuda.so, shipped by no toolkit package installed here). The wheel's
# libraries carry RPATH $ORIGIN/../../nvidia/{cusparselt,nvshmem,cu13}/lib, so
# these three are found in the venv; cudart, cuBLAS, cuDNN, NCCL, cuFFT,
# cuRAND, cuSPARSE, cuSOLVER and NVRTC come from the toolkit through the
# dynamic loader's path (/usr/local/cuda-13.0/lib in /etc/ld.so.conf.d, as
# the toolkit installs it; else set LD_LIBRARY_PATH). The check at the end
# fails, naming the library, when any of them cannot be found. triton
# (torch.compile's kernels) and cuda-bindings are Python-only: not needed.
# The pure-Python packages `import torch` needs are pinned too.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${TORCH2_VENV:-build-torch2/venv}
TORCH_PIN=torch==2.11.0
NVIDIA_PINS=(nvidia-cusparselt-cu13==0.8.0 nvidia-nvshmem-cu13==3.4.5
             nvidia-cufile==1.15.1.6)
PYTHON_PINS=(filelock==4.3.1 typing-extensions==4.16.0 setuptools==81.0.0
             sympy==1.14.0 mpmath==1.3.0 networkx==3.6.1 jinja2==3.1.6
             markupsafe==3.0.4 fsspec==2026.9.0)
STAMP="$VENV/.pins"
PINS="$TORCH_PIN ${NVIDIA_PINS[*]} ${PYTHON_PINS[*]}"

# Debian's python3 (3.11, the wheels' cp311), never a pyenv shim, so the
# venv is the same on every machine; python3-venv provides ensurepip.
python=${TORCH2_PYTHON:-/usr/bin/python3}
if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
  echo "torch_wheel: $python cannot make a venv" \
       "(apt-get install python3 python3-venv)" >&2
  exit 2
fi
if ! command -v nvcc >/dev/null; then
  echo "torch_wheel: nvcc not on PATH: the CUDA 13 toolkit is needed" >&2
  exit 2
fi
cuda_major=$(nvcc --version | sed -n 's/.*release \([0-9]*\)\..*/\1/p')
if [[ "$cuda_major" != 13 ]]; then
  echo "torch_wheel: nvcc is CUDA $cuda_major; $TORCH_PIN is built for" \
       "CUDA 13" >&2
  exit 2
fi

if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$PINS" ]]; then
  rm -rf "$VENV"
  "$python" -m venv "$VENV" >&2
  # pip's cache keeps the wheels (0.77 GB) for the next fresh venv (CI).
  pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check
       --only-binary=:all:)
  start=$(date +%s)
  "${pip[@]}" --no-deps "$TORCH_PIN" "${NVIDIA_PINS[@]}" >&2
  "${pip[@]}" --no-deps "${PYTHON_PINS[@]}" >&2
  echo "torch_wheel: installed $TORCH_PIN into $VENV in" \
       "$(($(date +%s) - start)) s ($(du -sh "$VENV" | cut -f1))" >&2
  echo "$PINS" > "$STAMP"
fi

# One import (a few seconds): the library folder, the ABI and the prefix.
# -W ignore: torch warns that numpy is missing; nothing here needs it.
read -r torch_lib abi prefix < <("$VENV/bin/python" -W ignore -c '
import os, torch
print(os.path.dirname(torch.__file__) + "/lib",
      int(torch._C._GLIBCXX_USE_CXX11_ABI), torch.utils.cmake_prefix_path)')
if [[ -z "${prefix:-}" ]]; then
  echo "torch_wheel: import torch failed in $VENV (delete it to reinstall)" >&2
  exit 1
fi
# The libraries the C++ build links must all resolve (libcuda.so.1 is the
# driver's: absent on machines without a GPU, and only dlopen'ed).
missing=$(ldd "$torch_lib/libtorch_cuda.so" | awk '/not found/ {print $1}' |
          sort -u | tr '\n' ' ')
if [[ -n "$missing" ]]; then
  echo "torch_wheel: libtorch_cuda.so cannot find: $missing(add the CUDA 13" \
       "toolkit's lib folder to /etc/ld.so.conf.d or LD_LIBRARY_PATH)" >&2
  exit 1
fi
if [[ "$abi" != 1 ]]; then
  # Debian's gRPC and abseil use the C++11 std::string ABI.
  echo "torch_wheel: the wheel uses the pre-C++11 ABI; Debian's libraries" \
       "will not link" >&2
  exit 1
fi
echo "$prefix"
