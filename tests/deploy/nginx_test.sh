#!/usr/bin/env bash
# deploy/nginx/nginx.conf, with only its upstream and listen addresses
# replaced by 127.0.0.1 ports, passes `nginx -t` and balances three live
# rmt-server replicas:
#   - twelve Converse streams through nginx are answered ("office", the
#     bundled model) and spread over more than one replica (rmt-client
#     draws each new session's id and sends it as x-session-id, so they
#     spread by the hash; all twelve on one replica: p = 3 / 3^12 ~ 6e-6);
#   - six unary calls with one x-session-id all reach the same replica.
#
#   nginx_test.sh RMT_SERVER RMT_CLIENT SOURCE_DIR
set -euo pipefail
server=$1 client=$2 source_dir=$3
entrypoint="$source_dir/deploy/docker-entrypoint.sh"
source "$source_dir/tests/deploy/lib.sh"
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx" ] || deploy_skip "nginx is not installed (scripts/install_deps.sh installs it)"
command -v curl >/dev/null || deploy_skip "curl is not installed"
deploy_setup nginx

free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

ports=()
for i in 1 2 3; do
  start_replica "rmt-$i" "$server" --model="$source_dir/models/rmt-babi"
  ports+=("$GRPC_PORT")
  metrics_ports[$i]=$METRICS_PORT
done
lb_port=$(free_port)
health_port=$(free_port)
sed -e "s/server rmt-1:50051/server 127.0.0.1:${ports[0]}/" \
  -e "s/server rmt-2:50051/server 127.0.0.1:${ports[1]}/" \
  -e "s/server rmt-3:50051/server 127.0.0.1:${ports[2]}/" \
  -e "s/listen 8080 http2;/listen 127.0.0.1:$lb_port http2;/" \
  -e "s/listen 8081;/listen 127.0.0.1:$health_port;/" \
  "$source_dir/deploy/nginx/nginx.conf" >"$work/nginx.conf"
changed=$(diff "$source_dir/deploy/nginx/nginx.conf" "$work/nginx.conf" | grep -c '^>' || true)
if [ "$changed" != 5 ]; then
  echo "FAIL: expected to replace 5 address lines of nginx.conf, replaced $changed"
  exit 1
fi

# -p: a prefix of our own; -e and pid: nothing written outside $work.
nginx_flags=(-p "$work" -e stderr -c "$work/nginx.conf")
"$nginx" -t "${nginx_flags[@]}" -g "pid $work/nginx.pid;"
"$nginx" "${nginx_flags[@]}" -g "pid $work/nginx.pid; daemon off;" \
  >"$work/nginx.out" 2>&1 &
deploy_pids+=($!)
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$health_port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$health_port/healthz" | grep -qx ok

printf 'Mary travelled to the office. The cat sat on the mat.\n' >"$work/doc.txt"
streams_sent=12
for i in $(seq 1 $streams_sent); do
  answer=$("$client" ask --server="127.0.0.1:$lb_port" --doc="$work/doc.txt" \
    --question="Where is Mary?" --progress=false --json 2>"$work/client.err") || {
    echo "FAIL: Converse through nginx failed:"
    cat "$work/client.err" "$work/nginx.out"
    exit 1
  }
  if ! grep -q '"office"' <<<"$answer"; then
    echo "FAIL: unexpected answer through nginx: $answer"
    exit 1
  fi
done

# GetModelInfo is unary with an empty request: one gRPC frame of 5 zero bytes.
printf '\0\0\0\0\0' >"$work/empty.grpc"
for _ in 1 2 3 4 5 6; do
  curl -fsS --http2-prior-knowledge -o /dev/null \
    -H 'content-type: application/grpc' -H 'te: trailers' \
    -H 'x-session-id: 0123456789abcdef0123456789abcdef' \
    --data-binary @"$work/empty.grpc" \
    "http://127.0.0.1:$lb_port/rmt.v1.MemoryQA/GetModelInfo"
done

count() {  # count METRICS_PORT METHOD: that replica's OK calls of METHOD
  curl -fsS "http://127.0.0.1:$1/metrics" |
    sed -n "s/^rmt_requests_total{code=\"OK\",method=\"$2\"} \([0-9]*\).*/\1/p" |
    awk '{n += $1} END {print n + 0}'
}
streams=() infos=()
for i in 1 2 3; do
  streams+=("$(count "${metrics_ports[$i]}" Converse)")
  infos+=("$(count "${metrics_ports[$i]}" GetModelInfo)")
done
echo "Converse per replica: ${streams[*]}; GetModelInfo per replica: ${infos[*]}"
used=0 total=0
for n in "${streams[@]}"; do
  total=$((total + n))
  if [ "$n" -gt 0 ]; then used=$((used + 1)); fi
done
if [ "$total" != "$streams_sent" ] || [ "$used" -lt 2 ]; then
  echo "FAIL: $streams_sent new sessions' streams should spread over the replicas"
  exit 1
fi
if ! printf '%s\n' "${infos[@]}" | sort -n | tr '\n' ' ' | grep -qx '0 0 6 '; then
  echo "FAIL: six calls with one x-session-id should reach one replica"
  exit 1
fi
echo "PASS"
