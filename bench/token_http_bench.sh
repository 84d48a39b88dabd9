#!/usr/bin/env bash
# Token exchanges per second through HTTP against a real `custody serve` (release build, a fresh
# data directory, the real ledger: every answer waits for its session.start event's fsync).
# Registers one agent (client secret, assert_initiator), takes one JWT-SVID for it, then runs
# wrk (bench/token_http_bench.lua) at each concurrency.
# Usage: bench/token_http_bench.sh BIN [duration_s=10] [connections="1 32"] [server_threads=2]
#   BIN: a custody binary, e.g. build/release/src/cli/custody
# Figures go in docs/PERFORMANCE.md (with the machine and this command).
set -euo pipefail
BIN=$1
DURATION=${2:-10}
CONNS=${3:-"1 32"}
SERVER_THREADS=${4:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
command -v wrk >/dev/null 2>&1 || { echo "token_http_bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }

source "$HERE/serve_quickstart.sh"
cat <&3 >/dev/null &  # keep draining the server's output

SECRET=$(curl -sf -X POST "$URL/v1/agents" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' \
  -d '{"name":"bench","description":"token bench","environment":"dev","grants":["tools/*"],
       "permissions":["assert_initiator"],"max_delegation_depth":3,"client_secret":true}' |
  sed -E 's/.*"client_secret":"([^"]+)".*/\1/')
# The actor token's audience is Custody's issuer (identity.issuer; the default here).
SVID=$(curl -sf -X POST "$URL/oauth2/token" -H 'Content-Type: application/x-www-form-urlencoded' \
  -d "grant_type=client_credentials&client_id=bench&client_secret=$SECRET&audience=https://custody.local" |
  sed -E 's/.*"access_token":"([^"]+)".*/\1/')
export CLIENT=bench SECRET SVID
# One second of exchanges first: a refused one stops the benchmark.
CHECK=$(wrk -t1 -c1 -d1s -s "$HERE/token_http_bench.lua" "$URL" | grep -c 'Non-2xx' || true)
if [ "$CHECK" != 0 ]; then echo "token_http_bench: the exchange is refused" >&2; exit 1; fi

echo "server: $URL, $SERVER_THREADS worker threads; ${DURATION}s per run"
for c in $CONNS; do
  t=$(( c < 2 ? 1 : 2 ))
  echo "== exchanges, $c connections (wrk -t$t)"
  wrk -t"$t" -c"$c" -d"${DURATION}s" --latency -s "$HERE/token_http_bench.lua" "$URL" |
    grep -E 'Requests/sec|^ +50%|^ +99%|Non-2xx|Socket errors'
done
echo "ledger size after the runs: $(curl -s "$URL/v1/ledger/checkpoint" | sed -n 2p) events"
