#!/bin/sh
# tools/call through a direct stdio pipe, Custody's gateway, supergateway and mcp-proxy, in one
# interleaved run (see bridges_bench.mjs). Pins the npm packages with `npm ci`.
#   bench/mcp_bridges/run.sh [custody binary] [calls per round] [rounds]
# LEVELS=1,8 (the default) picks the concurrencies. Build the binary first:
#   cmake --build build/release --target custody
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
custody=${1:-$root/build/release/src/cli/custody}
[ -x "$custody" ] || { echo "no custody binary at $custody" >&2; exit 1; }
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
exec node "$here/bridges_bench.mjs" "$custody" "$root" "${2:-1000}" "${3:-5}"
