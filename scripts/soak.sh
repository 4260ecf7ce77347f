#!/usr/bin/env bash
# make soak: rmt-server under SOAK_SECONDS (600) of traffic on 127.0.0.1:
#   - rmt-loadgen rounds, each opening, streaming and closing SOAK_SESSIONS
#     sessions (documents of SOAK_TOKENS tokens);
#   - beside it, a snapshot loop: ask with keep_alive, export, import the
#     snapshot, close both sessions.
# Prints the server's RSS after the warm-up (SOAK_WARMUP seconds) and at the
# end; fails if it grew by more than 10% after warm-up or if any call failed.
# Usage: scripts/soak.sh BUILD_DIR
set -euo pipefail

build=${1:-build}
total=${SOAK_SECONDS:-600}
warmup=${SOAK_WARMUP:-60}
sessions=${SOAK_SESSIONS:-8}
tokens=${SOAK_TOKENS:-2048}
model=${SOAK_MODEL:-models/rmt-babi}
source_doc=${SOAK_DOC:-/usr/share/games/fortunes/science}

work=$(mktemp -d)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  jobs -p | xargs -r kill 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# A few thousand tokens: each snapshot loop takes about a second.
doc=$work/doc.txt
head -n 100 "$source_doc" > "$doc"

"$build/server/rmt-server" --model="$model" --listen=127.0.0.1:0 \
  --metrics_listen= --session_idle_ttl=2m 2>"$work/server.log" &
server_pid=$!
port=""
for _ in $(seq 600); do
  port=$(sed -n 's/.*event=server_started .* port=\([0-9]*\).*/\1/p' "$work/server.log")
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "soak: the server did not start"; exit 1; }
server=127.0.0.1:$port
rss() { awk '/^VmRSS/ {print $2}' "/proc/$server_pid/status"; }
echo "soak: rmt-server pid $server_pid on $server; ${total}s, warm-up ${warmup}s"

start=$(date +%s)
deadline=$((start + total))
rss_start=$(rss)

load_loop() {
  local rounds=0
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if ! "$build/client/rmt-loadgen" --server="$server" --sessions="$sessions" \
        --tokens="$tokens" > "$work/loadgen.out" 2>&1; then
      echo "soak: rmt-loadgen failed:"; cat "$work/loadgen.out"; return 1
    fi
    rounds=$((rounds + 1))
  done
  echo "soak: $rounds load rounds of $sessions sessions x $tokens tokens"
}

snapshot_loop() {
  local loops=0 client="$build/client/rmt-client"
  while [ "$(date +%s)" -lt "$deadline" ]; do
    "$client" ask --server="$server" --doc="$doc" --question="Where is Mary?" \
      --keep_alive --json --progress=false > "$work/ask.json"
    local id
    id=$(sed -n 's/.*"session_id": "\([0-9a-f]*\)".*/\1/p' "$work/ask.json")
    [ -n "$id" ] || { echo "soak: no session id"; cat "$work/ask.json"; return 1; }
    "$client" export "$id" --server="$server" > "$work/snapshot.bin"
    local copy
    copy=$("$client" import --server="$server" < "$work/snapshot.bin")
    "$client" close "$id" --server="$server"
    "$client" close "$copy" --server="$server"
    loops=$((loops + 1))
  done
  echo "soak: $loops snapshot/import loops"
}

load_loop & load=$!
snapshot_loop & snap=$!
sleep "$warmup"
rss_warm=$(rss)
echo "soak: RSS at start ${rss_start} KiB, after warm-up ${rss_warm} KiB"
failed=0
wait "$load" || failed=1
wait "$snap" || failed=1
rss_end=$(rss)
growth=$(awk -v a="$rss_warm" -v b="$rss_end" 'BEGIN {printf "%.1f", (b - a) * 100 / a}')
echo "soak: RSS at end ${rss_end} KiB (${growth}% since warm-up)"
if [ "$failed" -ne 0 ]; then echo "soak: FAILED (a call failed)"; exit 1; fi
if awk -v g="$growth" 'BEGIN {exit !(g > 10)}'; then
  echo "soak: FAILED (RSS grew more than 10% after warm-up)"; exit 1
fi
echo "soak: passed"
