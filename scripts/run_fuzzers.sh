#!/usr/bin/env bash
# Runs every fuzzer of a fuzz build (make fuzz) for SECONDS each on a fresh
# copy of its seed corpus (tests/fuzz/corpus/NAME for NAME_fuzzer), so the
# committed corpus never changes under a run. Fails if any fuzzer finds a
# crash, leak, timeout or sanitizer report; the input is left as
# BUILD_DIR/fuzz-runs/NAME/crash-* (or leak-*, timeout-*, oom-*).
#   scripts/run_fuzzers.sh build-fuzz 60
set -euo pipefail
build_dir=${1:?usage: run_fuzzers.sh BUILD_DIR SECONDS}
seconds=${2:?usage: run_fuzzers.sh BUILD_DIR SECONDS}
source_dir="$(cd "$(dirname "$0")/.." && pwd)"

failed=()
while read -r fuzzer; do
  [ -n "$fuzzer" ] || continue
  name=${fuzzer%_fuzzer}
  work="$build_dir/fuzz-runs/$name"
  rm -rf "$work"
  mkdir -p "$work/corpus"
  cp -r "$source_dir/tests/fuzz/corpus/$name/." "$work/corpus/"
  echo "fuzz: $fuzzer for ${seconds}s"
  if ! "$build_dir/tests/fuzz/$fuzzer" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/" \
      "$work/corpus" >"$work/log.txt" 2>&1; then
    failed+=("$fuzzer")
    tail -n 40 "$work/log.txt"
  fi
  grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units)' "$work/log.txt" || true
done <"$build_dir/fuzzers.txt"

if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in $build_dir/fuzz-runs/*/)" >&2
  exit 1
fi
echo "fuzz: all fuzzers ran ${seconds}s without a finding"
