#!/bin/sh
# Container entrypoint: turns RMT_* environment variables into rmt-server
# flags, then execs the command.
#
#   docker run -e RMT_MAX_SESSIONS=256 rmt-serve            # rmt-server --max_sessions=256 ...
#   docker run rmt-serve rmt-client health --server=...     # any other command runs as given
#
# Only when the command is rmt-server (by name or path) are flags added; flags
# given on the command line come after the ones from the environment, so they
# win. An unset or empty variable adds nothing (the server's default holds),
# except RMT_METRICS_LISTEN, which defaults to 0.0.0.0:9464 here: inside a
# container the loopback default would be unreachable to Prometheus. The
# endpoint has no authentication, so publish 9464 only on the pod or compose
# network, never on a public interface.
#
# RMT_SNAPSHOT_KEY is read by rmt-server itself (prefer RMT_SNAPSHOT_KEY_FILE
# pointing at a mounted secret). tests/deploy/check_manifests.py checks that
# every flag of server/main.cc has a variable here, and that each exists.
set -eu

# VARIABLE flag, one per line.
RMT_FLAG_TABLE='
RMT_MODEL model
RMT_UNTRAINED_DIR untrained_dir
RMT_LISTEN listen
RMT_METRICS_LISTEN metrics_listen
RMT_DEVICE device
RMT_DTYPE dtype
RMT_MAX_BATCH max_batch
RMT_CUDA_GRAPHS cuda_graphs
RMT_MAX_QUEUE_DELAY max_queue_delay
RMT_MAX_SESSIONS max_sessions
RMT_DEVICE_SESSIONS device_sessions
RMT_SESSION_IDLE_TTL session_idle_ttl
RMT_SESSION_OFFLOAD_AFTER session_offload_after
RMT_MAX_PENDING_SEGMENTS max_pending_segments
RMT_MAX_CHUNK_BYTES max_chunk_bytes
RMT_MAX_CHUNK_TOKENS max_chunk_tokens
RMT_DEFAULT_TOP_K default_top_k
RMT_MAX_TOP_K max_top_k
RMT_SNAPSHOT_KEY_FILE snapshot_key_file
RMT_TLS_CERT tls_cert
RMT_TLS_KEY tls_key
RMT_AUTH_TOKENS_FILE auth_tokens_file
RMT_DRAIN_GRACE drain_grace
RMT_SESSION_STORE session_store
RMT_CHECKPOINT_EVERY_SEGMENTS checkpoint_every_segments
RMT_INTRA_OP_THREADS intra_op_threads
'

if [ "$#" -eq 0 ]; then
  set -- rmt-server
fi

case "$1" in
  rmt-server | */rmt-server) ;;
  *) exec "$@" ;;
esac

: "${RMT_METRICS_LISTEN=0.0.0.0:9464}"

server=$1
shift
flags_file=$(mktemp)
trap 'rm -f "$flags_file"' EXIT
printf '%s\n' "$RMT_FLAG_TABLE" | while read -r variable flag; do
  [ -n "$variable" ] || continue
  # The variable's value, set or not (POSIX sh has no ${!name}).
  if eval "[ -n \"\${$variable+x}\" ]"; then
    eval "value=\${$variable}"
    # An empty value is passed on only where it means something (no metrics
    # endpoint); elsewhere it leaves the default.
    if [ -n "$value" ] || [ "$flag" = metrics_listen ]; then
      printf -- '--%s=%s\n' "$flag" "$value"
    fi
  fi
done >"$flags_file"

# Rebuild the argument list: environment flags first, then the command line.
count=$#
while IFS= read -r line; do
  set -- "$@" "$line"
done <"$flags_file"
# Rotate the original arguments behind the environment's.
i=0
while [ "$i" -lt "$count" ]; do
  first=$1
  shift
  set -- "$@" "$first"
  i=$((i + 1))
done
rm -f "$flags_file"
trap - EXIT
exec "$server" "$@"
