#!/usr/bin/env bash
# Checks that every C++ file of the project is clang-formatted (.clang-format
# at the root); with --fix, formats them in place (make format).
#
#   scripts/check_format.sh          exit 1 and name the files that differ
#   scripts/check_format.sh --fix    rewrite them
#
# The files: tracked *.cc/*.h plus new ones git does not ignore, less the
# generated and vendored ones (EXCLUDE). CLANG_FORMAT picks the binary; the
# check pins no version, so use the one scripts/install_deps.sh installs
# (Debian 12: clang-format 14) to agree with CI.
set -euo pipefail
cd "$(dirname "$0")/.."

CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
# Generated (protoc output) and vendored code is not ours to format.
EXCLUDE='(\.pb\.(cc|h)$|^third_party/|^build[^/]*/)'

if ! command -v "$CLANG_FORMAT" >/dev/null; then
  echo "check_format: $CLANG_FORMAT not found; run scripts/install_deps.sh" >&2
  exit 2
fi

files=()
while IFS= read -r f; do
  [[ -f "$f" ]] && files+=("$f")
done < <(git ls-files --cached --others --exclude-standard -- '*.cc' '*.h' |
         grep -Ev "$EXCLUDE" | sort -u)

if [[ "${1:-}" == "--fix" ]]; then
  "$CLANG_FORMAT" -i --style=file "${files[@]}"
  echo "check_format: formatted ${#files[@]} files"
  exit 0
fi

bad=()
for f in "${files[@]}"; do
  if ! "$CLANG_FORMAT" --dry-run --Werror --style=file "$f" >/dev/null 2>&1; then
    bad+=("$f")
  fi
done

if [[ ${#bad[@]} -gt 0 ]]; then
  echo "check_format: ${#bad[@]} of ${#files[@]} files are not clang-formatted:" >&2
  printf '  %s\n' "${bad[@]}" >&2
  echo "Fix: make format   (or: $CLANG_FORMAT -i <file>; see the diff with" \
       "$CLANG_FORMAT --dry-run <file>)" >&2
  exit 1
fi
echo "check_format: ${#files[@]} files clang-formatted"
