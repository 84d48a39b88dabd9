#!/usr/bin/env bash
# HTTP benchmark of `custody serve` over loopback with wrk (Debian package, installed here if
# missing). Builds the release preset into build/serve-rel, starts the server on a free port in a
# temporary data directory, and measures requests/s and latency percentiles for:
#   GET /healthz, GET /v1/ledger/checkpoint, POST /v1/ledger/entries (single, and arrays of 16).
# Usage: bench/http_bench.sh [duration_s=10] [connections=64] [server_threads=2] [wrk_threads=2]
# Figures go in docs/PERFORMANCE.md (with the machine and this command).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
CONNS=${2:-64}
SERVER_THREADS=${3:-2}
WRK_THREADS=${4:-2}

if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then echo "http_bench: wrk is missing; run as root or install it" >&2; exit 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends wrk >/dev/null
fi
if [ ! -f build/serve-rel/build.ninja ]; then
  cmake --preset release -B build/serve-rel >/dev/null
fi
cmake --build build/serve-rel --target custody -j2 >/dev/null
BIN=build/serve-rel/src/cli/custody

source bench/serve_quickstart.sh  # the script runs from the repository root
export TOKEN

echo "server: $URL, $SERVER_THREADS worker threads; wrk: $WRK_THREADS threads, $CONNS connections, ${DURATION}s"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
run() {
  local name=$1; shift
  echo "== $name"
  wrk -t"$WRK_THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$@" | \
    grep -E 'Requests/sec|^ +50%|^ +99%|Non-2xx|Socket errors'
}
run "GET /healthz" "$URL/healthz"
# Seed one entry so the checkpoint exists.
BATCH=1 wrk -t1 -c1 -d1s -s bench/http_bench_post.lua "$URL/v1/ledger/entries" >/dev/null
run "GET /v1/ledger/checkpoint" "$URL/v1/ledger/checkpoint"
BATCH=1 run "POST /v1/ledger/entries (1 event per request)" -s bench/http_bench_post.lua "$URL/v1/ledger/entries"
BATCH=16 run "POST /v1/ledger/entries (16 events per request)" -s bench/http_bench_post.lua "$URL/v1/ledger/entries"
SIZE=$(curl -s "$URL/v1/ledger/checkpoint" | sed -n 2p)
echo "ledger size after the run: $SIZE events"
