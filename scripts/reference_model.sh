#!/usr/bin/env bash
# Trains the bundled reference model (models/rmt-babi) from scratch and
# evaluates it, as README "Quality" reports:
#
#   scripts/reference_model.sh [BUILD_DIR] [OUT_DIR]
#
# About 35 minutes of training on 2 cores, then the evaluation (1-15, 32,
# 128, 512 and 4096 segments; 500 samples per point up to 128, 100 beyond).
# Deterministic from --seed. To refresh the bundled copy, run it with
# OUT_DIR=models/rmt-babi.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
out=${2:-build/reference-model}
mkdir -p "$out"

train=(
  "$build/train/rmt-train" --out "$out"
  --tasks memorize,detect,reasoning
  --memory_attention bottleneck --hidden 128 --layers 3 --heads 4
  --intermediate 512 --mem_tokens 8 --segment_size 32
  --target_segments 8 --batch_size 64 --lr 1e-3 --warmup_steps 100
  --max_steps 4000 --stage_max_steps 400 --advance_accuracy 0.98
  --eval_every 50 --eval_samples 100 --checkpoint_every 250 --seed 1
  --threads 1
)
"${train[@]}"

"$build/train/rmt-eval" --model "$out" \
  --segments 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,32,128,512,4096 \
  --samples 500 --samples_long 100 --seed 1 \
  --table "$out/eval.md" --plot "$out/accuracy"
