#!/usr/bin/env bash
# Trains the bundled reference model (models/rmt-babi) from scratch and
# evaluates it, as README "Quality" reports:
#
#   scripts/reference_model.sh [BUILD_DIR] [OUT_DIR]
#
# Five stages, each starting from the one before (--init):
#   short  the curriculum from random weights: tasks join one at a time at
#          one segment, then documents grow one segment a stage to 8,
#          backpropagating through all of them (about 35 minutes);
#   32     documents of 1-32 segments, backpropagating through the last 8
#          (truncated BPTT, --backprop_segments), 600 steps (about 17);
#   128    the same with documents of 1-128 segments, 300 steps (about 22);
#   512a   documents of 1-512 segments, batches of 128, 408 steps;
#   512b   the same, 393 more steps with another seed.
# Then the evaluation (1-15, 32, 128, 512 and 4096 segments; 500 samples per
# point up to 128, 100 beyond). The first three stages' minutes are on one
# core of this machine (each runs one thread). The 512 stages ran on one
# H100 (7 and 3 minutes; on these 2 cores they would take hours): they
# stopped on --max_seconds, and replay here with --max_steps at the step
# each reached and --lr_decay_steps at the --max_steps each had, so the
# learning rate follows the same schedule. RMT_DEVICE picks the device
# (default auto: a GPU when there is one). Deterministic from the seeds on
# one device; a GPU's numbers differ from a CPU's in the last bits. Each
# stage trains into BUILD_DIR/reference-model-STAGE (checkpoints included);
# OUT_DIR gets the final model, every stage's command (train_command.txt,
# in order) and log (train_log-STAGE.jsonl), and the evaluation. To refresh
# the bundled copy, run it with OUT_DIR=models/rmt-babi.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
out=${2:-build/reference-model}
device=${RMT_DEVICE:-auto}
mkdir -p "$out"

short="$build/reference-model-short"
long32="$build/reference-model-32"
long128="$build/reference-model-128"
long512a="$build/reference-model-512a"
long512b="$build/reference-model-512b"
train_short=(
  "$build/train/rmt-train" --out "$short"
  --tasks "memorize,detect,reasoning"
  --memory_attention bottleneck --hidden 128 --layers 3 --heads 4
  --intermediate 512 --mem_tokens 8 --segment_size 32
  --target_segments 8 --batch_size 64 --lr 1e-3 --warmup_steps 100
  --max_steps 4000 --stage_max_steps 400 --advance_accuracy 0.98
  --eval_every 50 --eval_samples 100 --checkpoint_every 250 --seed 1
  --threads 1 --device "$device"
)
# The long stages go on training every task at once (no task curriculum);
# documents of every length up to the stage's, the memory they leave after
# many segments included, and gradients through the last 8 segments only.
long=(
  --tasks "memorize,detect,reasoning" --task_curriculum=false
  --backprop_segments 8 --batch_size 64 --checkpoint_every 100
  --eval_every 100 --threads 1 --device "$device"
)
train_32=(
  "$build/train/rmt-train" --init "$short" --out "$long32" "${long[@]}"
  --start_segments 32 --target_segments 32 --lr 2e-4 --warmup_steps 50
  --max_steps 600 --stage_max_steps 600 --eval_samples 100 --seed 7
)
train_128=(
  "$build/train/rmt-train" --init "$long32" --out "$long128" "${long[@]}"
  --start_segments 128 --target_segments 128 --lr 1e-4 --warmup_steps 20
  --max_steps 300 --stage_max_steps 300 --eval_samples 50 --seed 8
)
# Documents of up to 512 segments, in batches of 128 (on an H100 the
# model's inference step takes as long at 128 rows as at 64,
# docs/benchmarks-gpu.md).
long512=(
  "${long[@]}" --start_segments 512 --target_segments 512 --batch_size 128
  --lr 1e-4 --warmup_steps 20 --stage_max_steps 100000 --eval_samples 50
  --checkpoint_every 200
)
train_512a=(
  "$build/train/rmt-train" --init "$long128" --out "$long512a" "${long512[@]}"
  --max_steps 408 --lr_decay_steps 1500 --seed 11
)
train_512b=(
  "$build/train/rmt-train" --init "$long512a" --out "$long512b" "${long512[@]}"
  --max_steps 393 --lr_decay_steps 600 --seed 13
)
"${train_short[@]}"
"${train_32[@]}"
"${train_128[@]}"
"${train_512a[@]}"
"${train_512b[@]}"

# The final directory: the last stage's model, and what made it (each
# stage's command, in order, and log).
for file in config.json model.safetensors tokenizer_config.json vocab.txt; do
  cp "$long512b/$file" "$out/$file"
done
cat "$short/train_command.txt" "$long32/train_command.txt" \
  "$long128/train_command.txt" "$long512a/train_command.txt" \
  "$long512b/train_command.txt" >"$out/train_command.txt"
cp "$short/train_log.jsonl" "$out/train_log-short.jsonl"
cp "$long32/train_log.jsonl" "$out/train_log-32.jsonl"
cp "$long128/train_log.jsonl" "$out/train_log-128.jsonl"
cp "$long512a/train_log.jsonl" "$out/train_log-512a.jsonl"
cp "$long512b/train_log.jsonl" "$out/train_log-512b.jsonl"

"$build/train/rmt-eval" --model "$out" --tasks "memorize,detect,reasoning" \
  --segments 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,32,128,512,4096 \
  --samples 500 --samples_long 100 --seed 1 \
  --table "$out/eval.md" --plot "$out/accuracy"
