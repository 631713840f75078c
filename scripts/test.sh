#!/usr/bin/env bash
# Sets everything up, builds apigw twice (optimised, and ASan+UBSan) and runs every test of both through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/build.sh --sanitize

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for dir in build build-asan; do
  echo "=== tests: $dir"
  ctest --test-dir "$dir" --output-on-failure -j 2 --timeout 900 || status=1
done
exit $status
