#!/usr/bin/env bash
# udax's main job, on an emulated pmem device in a file: installs the Debian
# packages, builds the udax tool (incrementally: only what changed), then runs
# `udax demo` — a filesystem, files and a reflink, threads storing through DAX
# mappings, a memory failure in a shared block, the device removed under the
# threads, and the image re-attached and checked. Every step checks itself;
# the exit status is udax demo's (0: every step behaved as documented).
# Arguments go to `udax demo` (--device PATH, --keep, -f; see --help).
# UDAX_BUILD_DIR picks the build directory (default build/).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh >/dev/null
dir=${UDAX_BUILD_DIR:-build}
log=$(mktemp /tmp/udax-demo-build.XXXXXX)
echo "== building udax in $dir/ (Release)"
if ! { cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release && cmake --build "$dir" --target udax -j"$(nproc)"; } >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  echo "demo.sh: the build failed (output above)" >&2
  exit 1
fi
rm -f "$log"
exec "$dir/udax" demo "$@"
