#!/usr/bin/env bash
# rmt-train --init: imports the tiny Hugging Face fixture (tests/golden/hf)
# with rmt-import, trains a few steps from it, and checks that the result
# keeps the imported vocabulary, architecture and rmt config and that the
# weights moved. Then from a model trained without the unknown task (as the
# bundled one is), with it: its classifier gains the "unknown" label.
#
#   train_init_test.sh RMT_IMPORT RMT_TRAIN SOURCE_DIR
# Exit 77 (skipped) without Debian's fortunes.
set -euo pipefail
IMPORT=$1
TRAIN=$2
SOURCE=$3
NOISE=/usr/share/games/fortunes/science
[[ -f $NOISE ]] || { echo "skip: $NOISE missing (package fortunes)"; exit 77; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# 56 tokens a segment: the fixture's small vocabulary spells the tasks' names
# out in pieces, and two facts take up to 52 of them.
"$IMPORT" --from "$SOURCE/tests/golden/hf/model" --out "$TMP/init" \
  --labels "$("$TRAIN" --print_labels)" --num_mem_tokens 2 --segment_size 56 \
  --memory_attention bottleneck
"$TRAIN" --init "$TMP/init" --out "$TMP/out" --noise_file "$NOISE" \
  --tasks memorize --target_segments 1 --max_steps 4 --batch_size 4 \
  --eval_every 2 --eval_samples 4 --checkpoint_every 1000 --threads 2 \
  > "$TMP/train.log"

"$TRAIN" --out "$TMP/rooms" --noise_file "$NOISE" --tasks memorize \
  --vocab_size 500 --hidden 32 --layers 1 --heads 2 --intermediate 64 \
  --mem_tokens 2 --segment_size 40 --target_segments 1 --max_steps 1 \
  --batch_size 2 --eval_every 1 --eval_samples 2 --checkpoint_every 1000 \
  --threads 2 > "$TMP/rooms.log"
"$TRAIN" --init "$TMP/rooms" --out "$TMP/grown" --noise_file "$NOISE" \
  --tasks memorize,unknown --target_segments 1 --max_steps 2 --batch_size 4 \
  --eval_every 2 --eval_samples 4 --checkpoint_every 1000 --threads 2 \
  > "$TMP/grown.log"

python3 - "$TMP" "$("$TRAIN" --print_labels)" <<'EOF'
import json, sys
tmp = sys.argv[1]
init = json.load(open(f"{tmp}/init/config.json"))
out = json.load(open(f"{tmp}/out/config.json"))
for key in ("vocab_size", "hidden_size", "num_hidden_layers", "rmt",
            "id2label", "max_position_embeddings"):
    assert init[key] == out[key], (key, init[key], out[key])
assert out["rmt"]["num_mem_tokens"] == 2 and out["vocab_size"] == 121 + 2
assert open(f"{tmp}/init/vocab.txt").read() == open(f"{tmp}/out/vocab.txt").read()
assert json.load(open(f"{tmp}/out/tokenizer_config.json"))["do_lower_case"]
steps = [json.loads(l) for l in open(f"{tmp}/train.log") if l.startswith("{")]
assert steps, "no training log"
assert open(f"{tmp}/init/model.safetensors", "rb").read() != \
    open(f"{tmp}/out/model.safetensors", "rb").read(), "weights did not move"
labels = sys.argv[2].split(",")
rooms = json.load(open(f"{tmp}/rooms/config.json"))["id2label"]
grown = json.load(open(f"{tmp}/grown/config.json"))["id2label"]
assert [rooms[str(i)] for i in range(len(rooms))] == labels[:-1], rooms
assert [grown[str(i)] for i in range(len(grown))] == labels, grown
print(f"train_init_test: ok ({len(steps)} log lines)")
EOF
