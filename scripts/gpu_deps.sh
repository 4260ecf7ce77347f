#!/usr/bin/env bash
# Unpacks the Debian packages that scripts/gpu.sh's build needs into one
# folder, for a GPU machine that has a PyTorch wheel, nvcc, cmake and ninja
# but nothing from Debian and no internet:
#
#   scripts/gpu_deps.sh [DIR]        # default build-gpu-deps (git-ignored)
#
# Run it here (it needs apt-get and the Debian mirror); the device call
# carries DIR along and gpu.sh finds everything through it alone
# (RMT_DEPS_ROOT). Only the model side is built there (no gRPC), so the
# list is short: abseil, nlohmann-json, utf8proc and GoogleTest. Idempotent:
# a folder made from the same package versions is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${1:-build-gpu-deps}
packages=(libabsl-dev libabsl20220623 nlohmann-json3-dev libutf8proc-dev
  libutf8proc2 libgtest-dev libgmock-dev)
limit_mib=64  # what a device call carries, the working tree included

die() {
  echo "gpu_deps.sh: $*" >&2
  exit 1
}
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
  die "needs apt-get and dpkg-deb (Debian 12)"

# The candidate version of each package: the stamp says what DIR holds.
stamp=$(apt-cache policy "${packages[@]}" |
  awk '/^[^ ]/ {p=$1} /Candidate:/ {print p, $2}')
grep -q "(none)" <<<"$stamp" && die "no candidate for: $(grep '(none)' <<<"$stamp")"
if [ -f "$dir/.packages" ] && [ "$(cat "$dir/.packages")" = "$stamp" ]; then
  echo "gpu_deps.sh: $dir is up to date"
  exit 0
fi

work=$(mktemp -d)
chmod 755 "$work"  # apt-get download drops privileges to _apt
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download "${packages[@]}") ||
  die "apt-get download failed (run apt-get update first?)"
rm -rf "$dir"
mkdir -p "$dir"
for deb in "$work"/*.deb; do
  dpkg-deb -x "$deb" "$dir"
done
# Documentation is dead weight on the device.
rm -rf "$dir/usr/share/doc" "$dir/usr/share/man"
size_kib=$(du -sk "$dir" | cut -f1)
if [ "$size_kib" -gt $((limit_mib * 1024)) ]; then
  die "$dir is $((size_kib / 1024)) MiB, over the ${limit_mib} MiB a device call carries"
fi
echo "$stamp" >"$dir/.packages"
echo "gpu_deps.sh: $dir holds $(wc -l <<<"$stamp") packages, $((size_kib / 1024)) MiB:"
sed 's/^/  /' <<<"$stamp"
