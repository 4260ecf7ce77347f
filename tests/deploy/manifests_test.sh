#!/usr/bin/env bash
# deploy/ agrees with rmt-server and with itself (check_manifests.py).
#
#   manifests_test.sh RMT_SERVER SOURCE_DIR
set -euo pipefail
source "$2/tests/deploy/lib.sh"
/usr/bin/python3 -c 'import yaml' 2>/dev/null ||
  deploy_skip "python3-yaml is not installed"
exec /usr/bin/python3 "$2/tests/deploy/check_manifests.py" "$1" "$2"
