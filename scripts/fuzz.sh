#!/usr/bin/env bash
# Builds the libFuzzer target (clang, ASan+UBSan, build-fuzz/) and fuzzes
# every path that reads an image for SECONDS (default 60), starting from the
# committed seeds in tests/fuzz/corpus/ and the regression inputs in
# tests/fuzz/regressions/ (see docs/fuzzing.md). The run works on a scratch
# copy of the corpus (UDAX_FUZZ_WORK, default build-fuzz/run/corpus): the
# committed corpus changes only when you copy inputs back.
# Exits non-zero on any crash, hang, leak or sanitizer report and prints
# where the reproducer is (build-fuzz/run/crash-*, leak-*, timeout-*).
# UDAX_FUZZ_JOBS: parallel fuzzing processes (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
jobs=${UDAX_FUZZ_JOBS:-1}
command -v clang++ >/dev/null || scripts/install-deps.sh >/dev/null

log=$(mktemp /tmp/udax-fuzz-build.XXXXXX)
if ! { cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
         -DUDAX_FUZZ=ON && cmake --build build-fuzz --target fuzz_fs -j"$(nproc)"; } >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  echo "fuzz.sh: the fuzz build failed (output above)" >&2
  exit 1
fi
rm -f "$log"

run=$PWD/build-fuzz/run
work=${UDAX_FUZZ_WORK:-$run/corpus}
mkdir -p "$run" "$work"
cp -n tests/fuzz/corpus/* tests/fuzz/regressions/* "$work"/ 2>/dev/null || true
rm -f "$work"/README*
rm -f "$run"/crash-* "$run"/leak-* "$run"/timeout-* "$run"/oom-* "$run"/fuzz-*.log

echo "== fuzzing for ${seconds}s (corpus: $work)"
# handle_segv/sigbus=0 as in the tests: udax chains faults it does not own.
# -timeout: an input taking 10 s is a hang; -rss_limit_mb: a runaway allocation.
# More than one job: libFuzzer's -fork mode (children share the corpus).
parallel=()
if [ "$jobs" -gt 1 ]; then parallel=(-fork="$jobs" -ignore_crashes=0); fi
status=0
(cd "$run" && ASAN_OPTIONS=detect_leaks=1:handle_segv=0:handle_sigbus=0:allocator_may_return_null=1 \
   UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
   ../fuzz_fs -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -detect_leaks=1 \
     -print_final_stats=1 "${parallel[@]}" -artifact_prefix="$run/" "$work") \
  >"$run/fuzz.log" 2>&1 || status=$?
grep -E "^#[0-9]+ +(DONE|INITED)|stat::number_of_executed_units|cov: " "$run/fuzz.log" | tail -3 || true
found=$(ls "$run"/crash-* "$run"/leak-* "$run"/timeout-* "$run"/oom-* 2>/dev/null || true)
if [ "$status" != 0 ] || [ -n "$found" ]; then
  grep -E "ERROR: |runtime error|SUMMARY" "$run/fuzz.log" | head -5 >&2 || true
  echo "fuzz.sh: the fuzzer found a problem (exit $status); log: $run/fuzz.log" >&2
  for f in $found; do echo "fuzz.sh: reproducer: $f (replay: build-fuzz/fuzz_fs $f)" >&2; done
  exit 1
fi
echo "fuzz.sh: no crash, leak or sanitizer report in ${seconds}s"
