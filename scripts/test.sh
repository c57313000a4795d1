#!/usr/bin/env bash
# Installs dependencies, builds (Release, and ASan+UBSan unless UDAX_SKIP_ASAN=1)
# and runs the whole test suite with ctest. The last line is ctest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build
status=0
if [ "${UDAX_SKIP_ASAN:-0}" != 1 ]; then
  scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUDAX_SANITIZE=address,undefined
  echo "== tests under ASan+UBSan"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest -j"$(nproc)" --output-on-failure --timeout 600) || status=1
fi
echo "== tests (Release)"
(cd build && ctest -j"$(nproc)" --output-on-failure --timeout 600) || status=1
exit $status
