#!/usr/bin/env bash
# Builds the concurrent tests with ThreadSanitizer and runs them (the tests
# whose names contain "Thread" or "Concurrent"). Signal-unsafe calls in the
# DAX fault handler are by design (docs/dax.md) and not reported. Then runs
# the FUSE mount's CLI test with a TSan udax: its server is multi-threaded,
# and a report aborts it (halt_on_error), which fails the test.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUDAX_SANITIZE=thread >/dev/null
targets=$(grep -l -E "TEST(_F)?\([A-Za-z]+, [A-Za-z]*(Thread|Concurrent)" tests/*_test.cc | xargs -n1 basename | sed 's/\.cc$//')
cmake --build build-tsan -j"$(nproc)" --target $targets udax
status=0
for t in $targets; do
  echo "== $t (TSan)"
  TSAN_OPTIONS="halt_on_error=1 report_signal_unsafe=0" ./build-tsan/$t --gtest_filter='*Thread*:*Concurrent*' || status=1
done
echo "== cli fuse (TSan udax)"
TSAN_OPTIONS="halt_on_error=1 report_signal_unsafe=0" bash tests/cli/fuse.sh "$PWD/build-tsan/udax" || status=1
exit $status
