#!/usr/bin/env bash
# Configures and builds apigw: build/ (optimised, with debug info) and, with --sanitize, build-asan/ (ASan+UBSan).
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=${APIGW_BUILD_JOBS:-$(nproc)}
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)

configure_and_build() {
  local dir=$1; shift
  if [[ ! -f $dir/CMakeCache.txt ]]; then
    cmake -S . -B "$dir" "${generator[@]}" "$@" >/dev/null
  fi
  cmake --build "$dir" -j "$jobs"
}

configure_and_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [[ ${1:-} == --sanitize ]]; then
  configure_and_build build-asan -DCMAKE_BUILD_TYPE=Debug -DAPIGW_SANITIZE=ON
fi
