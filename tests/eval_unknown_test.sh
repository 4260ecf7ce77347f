#!/usr/bin/env bash
# rmt-eval with the unknown task on the bundled model, whose labels (the six
# rooms) leave that task out: the unknown row is 0 and said so once on
# stderr, memorize is scored as before, and the table and plot data carry
# the unknown row.
#
#   eval_unknown_test.sh RMT_EVAL SOURCE_DIR
set -euo pipefail
EVAL=$1
SOURCE=$2
NOISE=$SOURCE/tests/data/noise.txt  # shipped: no fortunes needed

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

plot=()
if command -v gnuplot > /dev/null; then plot=(--plot "$TMP/accuracy"); fi
"$EVAL" --model "$SOURCE/models/rmt-babi" --noise_file "$NOISE" \
  --tasks memorize,unknown --segments 1,2 --samples 20 --batch_size 20 \
  --threads 2 --table "$TMP/eval.md" "${plot[@]}" \
  > "$TMP/stdout" 2> "$TMP/stderr"

cat "$TMP/eval.md"
fail() { echo "eval_unknown_test: $*"; cat "$TMP/stderr"; exit 1; }
[[ $(grep -c 'no "unknown" label' "$TMP/stderr") == 1 ]] ||
  fail "expected one note about the missing unknown label"
grep -qx '| unknown | 0.0 | 0.0 |' "$TMP/eval.md" || fail "no unknown row of 0"
grep -qx '| memorize | 100.0 | 100.0 |' "$TMP/eval.md" ||
  fail "memorize is no longer scored right"
cmp -s "$TMP/stdout" "$TMP/eval.md" || fail "stdout and --table differ"
if [[ ${#plot[@]} -gt 0 ]]; then
  grep -qx '# unknown' "$TMP/accuracy.dat" || fail "no unknown in the plot data"
  [[ -s $TMP/accuracy-short.png && -s $TMP/accuracy-long.png ]] ||
    fail "no plots"
fi
echo "eval_unknown_test: ok"
