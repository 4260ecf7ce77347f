# Shared by the tests/deploy/*_test.sh scripts (sourced, not run).
#
#   deploy_setup NAME             temp dir in $work, cleanup on exit
#   deploy_skip "why"             exit 77 (CTest SKIP_RETURN_CODE)
#   start_replica NAME SERVER [flags...]
#                                 starts rmt-server through
#                                 deploy/docker-entrypoint.sh on 127.0.0.1
#                                 ports 0, waits for event=server_started and
#                                 sets GRPC_PORT and METRICS_PORT
#
# Every process started here is killed, and $work removed, on exit.

deploy_pids=()

deploy_cleanup() {
  local pid
  for pid in "${deploy_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${deploy_pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "${work:-}" ] && [ -d "$work" ]; then rm -rf "$work"; fi
}

deploy_setup() {
  work=$(mktemp -d "${TMPDIR:-/tmp}/rmt-$1.XXXXXX")
  trap deploy_cleanup EXIT
  trap 'exit 1' INT TERM
}

deploy_skip() {
  echo "SKIPPED: $1"
  exit 77
}

# The entrypoint adds the flags from RMT_* variables, as in the image. cwd
# is a directory of its own, so an empty RMT_MODEL means an untrained model
# (no models/rmt-babi there) created in RMT_UNTRAINED_DIR.
start_replica() {
  local name=$1 server=$2
  shift 2
  local log="$work/$name.log"
  mkdir -p "$work/$name"
  (cd "$work/$name" &&
    exec env RMT_LISTEN=127.0.0.1:0 RMT_METRICS_LISTEN=127.0.0.1:0 \
      RMT_INTRA_OP_THREADS=1 RMT_DRAIN_GRACE=1s \
      "$entrypoint" "$server" "$@") >/dev/null 2>"$log" &
  deploy_pids+=($!)
  local i
  for i in $(seq 1 300); do
    if grep -q 'event=server_started' "$log"; then
      GRPC_PORT=$(sed -n 's/.*event=server_started.* port=\([0-9]*\).*/\1/p' "$log")
      METRICS_PORT=$(sed -n 's/.*event=server_started.* metrics_port=\([0-9]*\).*/\1/p' "$log")
      return 0
    fi
    if ! kill -0 "${deploy_pids[-1]}" 2>/dev/null; then
      echo "FAIL: $name exited before starting:"
      cat "$log"
      exit 1
    fi
    sleep 0.1
  done
  echo "FAIL: $name did not start within 30 s:"
  cat "$log"
  exit 1
}
