#!/usr/bin/env bash
# The build's module views refuse an include that points up the module table (docs/architecture.md, "Modules").
#   module_layering.sh CXX VIEWS_DIR
# VIEWS_DIR is the build's include-views/: one directory per module, holding only the headers that module may use.
# Each probe is one include compiled with -fsyntax-only against one module's view, as that module compiles.
set -uo pipefail
cxx=$1 views=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0 checks=0

probe() {  # MODULE HEADER allowed|refused
  local module=$1 header=$2 want=$3 out
  checks=$((checks + 1))
  printf '#include "%s"\n' "$header" >"$tmp/probe.cpp"
  if out=$("$cxx" -std=c++20 -fsyntax-only -I "$views/$module" "$tmp/probe.cpp" 2>&1); then
    [[ $want == allowed ]] && return 0
    echo "FAIL: module $module could include $header, which is above it or not among its modules"
  else
    if [[ $want == refused && $out == *"$header: No such file or directory"* ]]; then return 0; fi
    echo "FAIL: module $module including $header: expected $want, the compiler said:"
    printf '%s\n' "$out" | head -5
  fi
  failures=$((failures + 1))
}

for module in core http routing config net memcache redis upstream proxy auth cache migration server admin edge; do
  checks=$((checks + 1))
  [[ -d $views/$module/apigw/$module ]] || { echo "FAIL: no view for module $module in $views"; failures=$((failures + 1)); }
done
probe net apigw/core/units.h allowed          # a module below, in its view
probe core apigw/core/units.h allowed          # its own headers
probe net apigw/server/worker.h refused        # up the table
probe core apigw/http/request_id.h refused     # core is the bottom: it sees only itself
probe upstream apigw/proxy/forwarder.h refused # the module right above it
probe migration apigw/auth/token.h refused     # beside it: migration does not use auth
probe memcache apigw/redis/reply.h refused     # beside it, below neither
probe edge apigw/server/worker.h refused       # the edge export sees the config, never the data path

echo "$((checks - failures)) passed, $failures failed"
((failures == 0))
