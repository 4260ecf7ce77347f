#!/usr/bin/env bash
# Creates the secrets deploy/compose.yaml mounts, if missing: a random HMAC
# key for snapshots (shared by every replica) and one bearer token, also
# written to client_token for rmt-client --token. They stay out of git and
# out of the image (.gitignore here, .dockerignore).
#
# Compose (without swarm) bind-mounts secret files with their host owner and
# mode, and the replicas run as uid 10001: the files are world-readable, and
# this directory (mode 0700) is what keeps other host users out.
set -euo pipefail
cd "$(dirname "$0")"
chmod 0700 .
random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
[ -s snapshot_key ] || random_hex 32 >snapshot_key
if [ ! -s auth_tokens ]; then
  random_hex 24 >client_token
  printf '%s\n' "$(cat client_token)" >auth_tokens
fi
chmod 0644 snapshot_key auth_tokens
chmod 0600 client_token
echo "deploy/secrets: snapshot_key, auth_tokens, client_token"
