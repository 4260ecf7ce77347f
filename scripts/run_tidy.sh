#!/usr/bin/env bash
# Runs clang-tidy (checks: .clang-tidy at the root) over the project's sources
# as BUILD_DIR compiles them (its compile_commands.json), in parallel.
#
#   scripts/run_tidy.sh BUILD_DIR [PATH_PREFIX...]   e.g. build model/ train/
#
# BUILD_DIR must be built (the generated *.pb.h must exist). Prints the
# findings; fails only if clang-tidy cannot parse a file.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${1:?usage: scripts/run_tidy.sh BUILD_DIR [PATH_PREFIX...]}
shift
prefixes=("$@")
if [[ ${#prefixes[@]} -eq 0 ]]; then
  prefixes=(model/ server/ train/ tools/ client/ bench/ tests/)
fi

RUN_CLANG_TIDY=${RUN_CLANG_TIDY:-run-clang-tidy}
if ! command -v "$RUN_CLANG_TIDY" >/dev/null; then
  echo "run_tidy: $RUN_CLANG_TIDY not found; run scripts/install_deps.sh" >&2
  exit 2
fi

# clang-tidy reads the build's compile commands, less what only gcc wants:
# the ccache launcher, -Werror (clang's own warnings are not the point here),
# and CMake's precompiled header (a gcc .gch that clang cannot read; the
# header it was made from is included instead).
db=$build/tidy
mkdir -p "$db"
python3 - "$build/compile_commands.json" "$db" <<'EOF'
import json, os, re, shutil, sys
src, out = sys.argv[1], sys.argv[2]
entries = json.load(open(src))
for e in entries:
    cmd = e["command"]
    cmd = re.sub(r"^\S*ccache\s+", "", cmd)
    cmd = cmd.replace(" -Werror", " ").replace(" -Winvalid-pch", " ")
    def copy_pch(m):
        copy = os.path.join(os.path.abspath(out),
                            m.group(1).strip("/").replace("/", "_"))
        shutil.copyfile(m.group(1), copy)
        return "-include " + copy
    cmd = re.sub(r"-include (\S*cmake_pch\.hxx)", copy_pch, cmd)
    e["command"] = cmd
json.dump(entries, open(os.path.join(out, "compile_commands.json"), "w"),
          indent=1)
EOF

regex=()
for p in "${prefixes[@]}"; do regex+=("^$root/${p%/}/.*\\.cc\$"); done
jobs=${JOBS:-$(nproc)}
"$RUN_CLANG_TIDY" -quiet -j "$jobs" -p "$db" "${regex[@]}"
