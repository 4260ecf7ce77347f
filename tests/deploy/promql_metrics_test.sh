#!/usr/bin/env bash
# Every metric the Grafana dashboard and the alert rules name is one a live
# rmt-server exports.
#
#   promql_metrics_test.sh RMT_SERVER RMT_CLIENT SOURCE_DIR
#
# Starts rmt-server (through deploy/docker-entrypoint.sh, on an untrained
# model, 127.0.0.1 ports 0), sends two Converse streams with questions and
# one failing call so that histograms and error codes have samples, scrapes
# /metrics and checks every expression (promql_metrics.py).
set -euo pipefail
server=$1 client=$2 source_dir=$3
entrypoint="$source_dir/deploy/docker-entrypoint.sh"
source "$source_dir/tests/deploy/lib.sh"
command -v curl >/dev/null || deploy_skip "curl is not installed"
python=/usr/bin/python3
"$python" -c 'import yaml' 2>/dev/null || deploy_skip "python3-yaml is not installed"
deploy_setup promql

start_replica replica "$server" --untrained_dir="$work/untrained-model"
printf 'Mary travelled to the office. The cat sat on the mat.\n%.0s' $(seq 40) >"$work/doc.txt"
for i in 1 2; do
  "$client" ask --server="127.0.0.1:$GRPC_PORT" --doc="$work/doc.txt" \
    --question="Where is Mary?" --progress=false >/dev/null
done
# NOT_FOUND: an error code in rmt_requests_total.
if "$client" close 00000000000000000000000000000000 \
  --server="127.0.0.1:$GRPC_PORT" 2>/dev/null; then
  echo "FAIL: closing an unknown session succeeded"
  exit 1
fi
curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics" >"$work/metrics.txt"
if ! grep -Eq '^rmt_answer_latency_seconds_count [1-9]' "$work/metrics.txt"; then
  echo "FAIL: no answer was counted; the traffic did not reach the server"
  cat "$work/metrics.txt"
  exit 1
fi
"$python" "$source_dir/tests/deploy/promql_metrics.py" "$work/metrics.txt" \
  "$source_dir"/deploy/grafana/dashboards/*.json \
  "$source_dir/deploy/prometheus/rules.yml"
