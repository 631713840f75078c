#!/usr/bin/env bash
# Configures and builds apigw: build/ (optimised, with debug info) and, with --sanitize, build-asan/ (ASan+UBSan).
# build-asan/ also waits for socket readiness through Asio's public API only (APIGW_PORTABLE_READINESS), so the
# test command runs every test against both readiness paths: the fast one verified for this Boost, and the one
# every other Boost version builds.
# With --fuzz (alone or beside --sanitize), also build-fuzz/: the libFuzzer targets of tests/fuzz, a CMake project of
# their own compiled by clang-15 (libFuzzer is clang's; see docs/decisions.md).
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=${APIGW_BUILD_JOBS:-$(nproc)}
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)

# Unity batches: each module's (and each test binary's) sources compile as batches of up to 16 files, one
# translation unit each, so Asio, Beast and the rest are parsed a few times per module instead of once per file: a
# fresh build takes a fraction of the time. APIGW_UNITY_BUILD=OFF compiles file by file, which rebuilds less after
# a change to one source (docs/decisions.md).
unity=(-DCMAKE_UNITY_BUILD="${APIGW_UNITY_BUILD:-ON}" -DCMAKE_UNITY_BUILD_BATCH_SIZE=16)

configure_and_build() {
  local dir=$1; shift
  if [[ -f $dir/CMakeCache.txt ]]; then
    cmake -S . -B "$dir" "${unity[@]}" "$@" >/dev/null  # applies options changed since the directory was configured
  else
    cmake -S . -B "$dir" "${generator[@]}" "${unity[@]}" "$@" >/dev/null
  fi
  cmake --build "$dir" -j "$jobs"
}

configure_and_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [[ " $* " == *" --sanitize "* ]]; then
  configure_and_build build-asan -DCMAKE_BUILD_TYPE=Debug -DAPIGW_SANITIZE=ON -DAPIGW_PORTABLE_READINESS=ON
fi
if [[ " $* " == *" --fuzz "* ]]; then
  if [[ ! -f build-fuzz/CMakeCache.txt ]]; then
    cmake -S tests/fuzz -B build-fuzz "${generator[@]}" -DCMAKE_CXX_COMPILER=clang++-15 >/dev/null
  fi
  cmake --build build-fuzz -j "$jobs"
fi
