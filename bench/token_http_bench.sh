#!/usr/bin/env bash
# Token exchanges per second through HTTP against a real `custody serve` (release build, a fresh
# data directory, the real ledger: every answer waits for its session.start event's fsync).
# Registers one agent (client secret, assert_initiator), takes one JWT-SVID for it, then runs
# wrk (bench/token_http_bench.lua) at each concurrency, for each kind of exchange:
#   root:     a root session for an asserted initiator (one ES256 verification, one signature);
#   delegate: a child of one root session (its access token verified too: two verifications
#             and one signature, the parent's session and revocation state read);
#   svid:     a JWT-SVID (grant_type=client_credentials) for a client authenticating with
#             private_key_jwt: its assertion verified (ES256) and its jti recorded (replay
#             protection), the SVID signed, its credential.issue event recorded;
#   root-jwt: a root exchange like `root`, the client authenticating with private_key_jwt.
#   The private_key_jwt kinds sign a fresh assertion per request beforehand
#   (bench/token_assertions.mjs, node), ASSERTIONS_PER_S (default 8000) per second of run.
# Usage: bench/token_http_bench.sh BIN [duration_s=10] [connections="1 32"] [server_threads=2]
#                                  [kinds="root delegate"]
#   BIN: a custody binary, e.g. build/release/src/cli/custody
# Figures go in docs/PERFORMANCE.md (with the machine and this command).
set -euo pipefail
BIN=$1
DURATION=${2:-10}
CONNS=${3:-"1 32"}
SERVER_THREADS=${4:-2}
KINDS=${5:-"root delegate"}
HERE=$(cd "$(dirname "$0")" && pwd)
command -v wrk >/dev/null 2>&1 || { echo "token_http_bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }

source "$HERE/serve_quickstart.sh"
cat <&3 >/dev/null &  # keep draining the server's output

SECRET=$(curl -sf -X POST "$URL/v1/agents" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' \
  -d '{"name":"bench","description":"token bench","environment":"dev","grants":["tools/*"],
       "permissions":["assert_initiator"],"max_delegation_depth":3,"client_secret":true}' |
  sed -E 's/.*"client_secret":"([^"]+)".*/\1/')
# The actor token's audience is Custody's issuer: identity.issuer is not set here, so it is the
# URL the server listens on.
SVID=$(curl -sf -X POST "$URL/oauth2/token" -H 'Content-Type: application/x-www-form-urlencoded' \
  -d "grant_type=client_credentials&client_id=bench&client_secret=$SECRET&audience=$URL" |
  sed -E 's/.*"access_token":"([^"]+)".*/\1/')
export CLIENT=bench SECRET SVID
# One second of exchanges first: a refused one stops the benchmark.
CHECK=$(wrk -t1 -c1 -d1s -s "$HERE/token_http_bench.lua" "$URL" | grep -c 'Non-2xx' || true)
if [ "$CHECK" != 0 ]; then echo "token_http_bench: the exchange is refused" >&2; exit 1; fi

# The parent of the delegations: one root session's access token.
ROOT=$(curl -sf -X POST "$URL/oauth2/token" -H 'Content-Type: application/x-www-form-urlencoded' \
  -d "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&client_id=bench&client_secret=$SECRET&audience=bench-gateway&scope=tools/read&subject_token=%7B%22sub%22%3A%22bench-initiator%22%7D&subject_token_type=urn:custody:params:oauth:token-type:initiator-assertion&actor_token=$SVID&actor_token_type=urn:ietf:params:oauth:token-type:jwt" |
  sed -E 's/.*"access_token":"([^"]+)".*/\1/')
CHECK=$(SUBJECT=$ROOT wrk -t1 -c1 -d1s -s "$HERE/token_http_bench.lua" "$URL" | grep -c 'Non-2xx' || true)
if [ "$CHECK" != 0 ]; then echo "token_http_bench: the delegation is refused" >&2; exit 1; fi

# The private_key_jwt client: its key and its own JWT-SVID (the actor of its exchanges).
node "$HERE/token_assertions.mjs" bench-jwt "$URL/oauth2/token" 1 "$WORK/jwk.json" "$WORK/a.txt" \
  "$WORK/client.pem"
curl -sf -X POST "$URL/v1/agents" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' \
  -d '{"name":"bench-jwt","description":"token bench, private_key_jwt","environment":"dev",
       "grants":["tools/*"],"permissions":["assert_initiator"],"max_delegation_depth":3,
       "client_jwk":'"$(cat "$WORK/jwk.json")"'}' >/dev/null
JWT_SVID=$(curl -sf -X POST "$URL/oauth2/token" -H 'Content-Type: application/x-www-form-urlencoded' \
  -d "grant_type=client_credentials&client_id=bench-jwt&audience=$URL&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=$(cat "$WORK/a.txt")" |
  sed -E 's/.*"access_token":"([^"]+)".*/\1/')

echo "server: $URL, $SERVER_THREADS worker threads; ${DURATION}s per run"
for kind in $KINDS; do
  subject=""
  [ "$kind" = delegate ] && subject=$ROOT
  client=bench svid=$SVID grant="" assertions=""
  case "$kind" in
    svid) client=bench-jwt grant=client_credentials assertions=$WORK/a.txt ;;
    root-jwt) client=bench-jwt svid=$JWT_SVID assertions=$WORK/a.txt ;;
  esac
  for c in $CONNS; do
    t=$(( c < 2 ? 1 : 2 ))
    if [ -n "$assertions" ]; then
      node "$HERE/token_assertions.mjs" bench-jwt "$URL/oauth2/token" \
        $(( DURATION * ${ASSERTIONS_PER_S:-8000} )) "$WORK/jwk.json" "$assertions" "$WORK/client.pem"
    fi
    echo "== $kind, $c connections (wrk -t$t)"
    CLIENT=$client SVID=$svid GRANT=$grant ASSERTIONS=$assertions WRK_THREADS=$t SUBJECT=$subject wrk -t"$t" -c"$c" -d"${DURATION}s" --latency -s "$HERE/token_http_bench.lua" \
      "$URL" | grep -E 'Requests/sec|^ +50%|^ +99%|Non-2xx|Socket errors'
  done
done
[ -n "${METRICS:-}" ] && ls -la "$WORK/data" && curl -s "$URL/metrics" -H "Authorization: Bearer $TOKEN" | grep -E "custody_ledger_(batch_size|commit_duration_seconds)_(sum|count)"
echo "ledger size after the runs: $(curl -s "$URL/v1/ledger/checkpoint" | sed -n 2p) events"
