#!/usr/bin/env bash
# Installs every build, test, run and benchmark dependency of apigw from Debian's packages.
# Idempotent: packages already present are not fetched again. Needs root (or sudo).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  clang-15 libfuzzer-15-dev  # the fuzz targets (tests/fuzz): libFuzzer is clang's
  libboost1.81-dev libyaml-cpp-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev
  libhiredis-dev libmemcached-dev libsystemd-dev
  libssl-dev openssl ca-certificates  # TLS (Asio's ssl); the tests make their certificates with openssl
  redis-server redis-tools memcached
  nginx-light haproxy wrk curl python3 python3-pytest procps systemd
  nodejs  # the exported edge worker module runs under Node.js in the tests
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # Packaged services must not hold the ports the local stack and tests use.
  for svc in nginx haproxy redis-server memcached; do
    "${sudo_cmd[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
  done
fi
