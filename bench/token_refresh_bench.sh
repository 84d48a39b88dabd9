#!/usr/bin/env bash
# Token endpoint throughput, refresh and exchange in the same sitting (issue #18), interleaved so
# that a change in the shared machine's load hits both alike: for each round, exchanges
# (bench/token_http_bench.sh: wrk, root and delegate exchanges) then refresh grants
# (bench/token_refresh_bench.mjs: N sign-ins through oidc-provider, then N rotating chains).
# Each benchmark starts its own release `custody serve` on a fresh data directory. The load
# average is printed before and after each benchmark.
# Usage: bench/token_refresh_bench.sh BIN [rounds=2] [duration_s=10] [concurrencies="1 32"]
#                                     [server_threads=2]
#   BIN: a custody binary, e.g. build/release/src/cli/custody
# Needs wrk and tests/oauth/node_modules (`npm ci` in tests/oauth).
# Figures go in docs/PERFORMANCE.md (with the machine and this command).
set -euo pipefail
BIN=$1
ROUNDS=${2:-2}
DURATION=${3:-10}
CONNS=${4:-"1 32"}
SERVER_THREADS=${5:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
[ -d "$HERE/../tests/oauth/node_modules" ] ||
  { echo "token_refresh_bench: run \`npm ci\` in tests/oauth first" >&2; exit 1; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "binary: $BIN; node $(node --version); $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
for round in $(seq 1 "$ROUNDS"); do
  echo "######## round $round: exchange"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  bash "$HERE/token_http_bench.sh" "$BIN" "$DURATION" "$CONNS" "$SERVER_THREADS"
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "######## round $round: refresh"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  # Without oidc-provider's development-mode warnings and notices; failures are still shown.
  node "$HERE/token_refresh_bench.mjs" "$BIN" "$DURATION" "$CONNS" "$SERVER_THREADS" 2>&1 |
    grep -v 'oidc-provider'
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
done
