#!/usr/bin/env bash
# Runs one libFuzzer target for APIGW_FUZZ_SECONDS (default 30) as a CTest test: from a copy of its seed corpus in
# a temporary directory (the fuzzer adds what it finds there, never to the repository), with crash, leak, timeout
# and out-of-memory artifacts written there too. Fails when libFuzzer does (any crash, leak, timeout, sanitizer
# report or broken invariant) and then prints where the artifact is; a clean run leaves nothing behind.
#   run_target.sh BINARY SEED_DIR [DICTIONARY]
set -euo pipefail

binary=$1
seeds=$2
dictionary=${3:-}
seconds=${APIGW_FUZZ_SECONDS:-30}

work=$(mktemp -d "${TMPDIR:-/tmp}/apigw-$(basename "$binary").XXXXXX")
mkdir "$work/corpus" "$work/artifacts"
cp -R "$seeds"/. "$work/corpus"/

# Every sanitizer report ends the run (ours come last, so they win over a caller's settings).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}halt_on_error=1:detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}halt_on_error=1:print_stacktrace=1"
# clang-15's runtime does not find Debian's unversioned llvm-symbolizer by itself; reports need it for file:line.
if [[ -z ${ASAN_SYMBOLIZER_PATH:-} ]]; then
  symbolizer=$(command -v llvm-symbolizer-15 || command -v llvm-symbolizer || true)
  [[ -n $symbolizer ]] && export ASAN_SYMBOLIZER_PATH=$symbolizer
fi

args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
      -artifact_prefix="$work/artifacts/")
[[ -n $dictionary ]] && args+=(-dict="$dictionary")

status=0
"$binary" "${args[@]}" "$work/corpus" || status=$?
if ((status != 0)); then
  echo "fuzz target $(basename "$binary") failed (exit status $status); reproduce with: $binary ARTIFACT" >&2
  for artifact in "$work"/artifacts/*; do
    [[ -e $artifact ]] && echo "artifact: $artifact" >&2
  done
  exit "$status"
fi
rm -rf "$work"
