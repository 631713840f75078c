#!/usr/bin/env bash
# Sets everything up, builds apigw twice (optimised, and ASan+UBSan) and runs every test of both through CTest, then
# the fuzz targets (build-fuzz/, clang-15 and libFuzzer): each for APIGW_FUZZ_SECONDS (default 30) from its seed
# corpus, two at a time, about 2 minutes in all. Any failure of any of them fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/build.sh --sanitize --fuzz

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for dir in build build-asan; do
  echo "=== tests: $dir"
  rm -f "$dir/Testing/Temporary/LastTestsFailed.log"
  ctest --test-dir "$dir" --output-on-failure -j 2 --timeout 900 || status=1
done
# The fuzz tests set their own time limit (tests/fuzz/run_target.sh), and their own sanitizer options on top of these.
echo "=== fuzz: build-fuzz"
rm -f build-fuzz/Testing/Temporary/LastTestsFailed.log
ctest --test-dir build-fuzz --output-on-failure -j 2 || status=1
# The failures again, last, where a reader of the log's tail finds them.
for dir in build build-asan build-fuzz; do
  failed=$dir/Testing/Temporary/LastTestsFailed.log
  if [[ -s $failed ]]; then
    echo "=== failed in $dir:"
    sed 's/^/  /' "$failed"
  fi
done
exit $status
