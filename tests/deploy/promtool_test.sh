#!/usr/bin/env bash
# deploy/prometheus: the scrape config and the alert rules are valid, and the
# rules' unit tests (rules_test.yml) pass.
#
#   promtool_test.sh SOURCE_DIR
set -euo pipefail
source_dir=$1
source "$source_dir/tests/deploy/lib.sh"
command -v promtool >/dev/null ||
  deploy_skip "promtool is not installed (Debian package prometheus)"
cd "$source_dir/deploy/prometheus"
promtool check config prometheus.yml
promtool check rules rules.yml
promtool test rules rules_test.yml
