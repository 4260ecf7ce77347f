#!/usr/bin/env bash
# Creates (once) the Python environment of the Hugging Face parity
# generators (tests/golden/make_hf_golden.py, make_hf_tokenizer_golden.py,
# make_minilm_golden.py) in an ignored build folder, and prints its python.
#
#   PY=$(bash scripts/hf_venv.sh)        # build-hf/venv/bin/python
#   HF_VENV=/tmp/venv bash scripts/hf_venv.sh
#
# Torch is Debian's python3-torch (1.13, CPU only), seen through
# --system-site-packages: PyPI's Linux torch wheels are CUDA builds that pull
# in gigabytes of nvidia-* packages, and the parity checks need none of it.
# transformers is pinned to the last release line that still runs on
# torch 1.13; tokenizers and safetensors to the versions it was tested with.
# Only the generators use this; make test needs no PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${HF_VENV:-build-hf/venv}
PINS=(transformers==4.44.2 tokenizers==0.19.1 safetensors==0.4.5
      huggingface-hub==0.24.6)
STAMP="$VENV/.pins"

if [[ ! -x /usr/bin/python3 ]] ||
   ! /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
  echo "hf_venv: needs Debian's python3-torch and python3-numpy" \
       "(apt-get install python3-torch python3-numpy python3-venv)" >&2
  exit 2
fi

if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "${PINS[*]}" ]]; then
  rm -rf "$VENV"
  /usr/bin/python3 -m venv --system-site-packages "$VENV" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "${PINS[@]}" >&2
  echo "${PINS[*]}" > "$STAMP"
fi
echo "$VENV/bin/python"
