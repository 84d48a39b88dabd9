#!/usr/bin/env bash
# Several `custody serve` nodes on one PostgreSQL database against one SQLite node (#19), in one
# sitting, over loopback, with wrk against real release binaries. Configurations: `sqlite` (one
# node, files in its data directory), `pg1`, `pg2`, `pg3` (1, 2, 3 nodes on one database of a
# throwaway PostgreSQL cluster started here). Round-robin: each round runs every configuration
# once, R rounds, so drift (other work on the machine) hits all alike. Each configuration-round
# starts its nodes afresh (a fresh data directory / a fresh database) and measures:
#   appends:   POST /v1/ledger/entries, one event per request, admin token, every answer a durable
#              receipt (bench/http_bench_post.lua);
#   authorize: POST /v1/actions:authorize with session tokens (16 sessions of one agent, spread
#              round-robin over the requests: bench/authorize_bench.lua), one permit policy.
# The load is spread over the nodes: one wrk (-t1) per node at the same time, CONNS/N connections
# each, requests/s summed. Every node has SERVER_THREADS worker threads.
# Then, on two fresh PostgreSQL nodes: cross-node containment latency (bench/containment_latency.mjs:
# revoke at A, poll B's authorize until 401; and A -> A for comparison), and, with GATEWAY=1
# (default), the gateway's tools/call overhead at concurrency 1 on PostgreSQL and on SQLite
# (tests/mcp/overhead_bench.mjs, LEVELS=1, 2000 calls).
# `uptime`'s load average is printed before and after each measurement.
# Usage: bench/multi_node_bench.sh BIN [rounds=3] [duration_s=10] [connections=48]
#                                  [server_threads=2] [containment_rounds=200]
#   BIN: a custody binary, e.g. build/release/src/cli/custody
#   env CONFIGS="sqlite pg1 pg2 pg3" picks configurations; GATEWAY=0 skips the gateway overhead;
#   PGSS=1 loads pg_stat_statements and prints, after each PostgreSQL run (the gateway's too), the
#   statements that took the most server time (calls per request, mean ms) to show where the time
#   goes.
#   NODE_CPU=0.25 (a fraction of one CPU, as root, cgroup v1 `cpu` controller) runs every node this
#   script starts (sqlite, pgN, containment) in a cgroup of its own capped at that much CPU
#   (cfs_quota_us over a 100 ms period), to simulate nodes on separate small machines; PostgreSQL,
#   wrk and the gateway benchmark's node stay unconstrained. A simulation only: the nodes still
#   share the memory bus, the disk and PostgreSQL's cores. Each run's line then also says how
#   often the nodes were throttled (periods that hit the quota / periods with work). The cgroups
#   are removed on exit.
# PostgreSQL: Debian's server binaries (/usr/lib/postgresql/<version>/bin); as root, initdb and
# postgres run as `nobody` (setpriv). Its settings are the defaults (fsync, synchronous_commit on)
# but max_connections=400. Everything lives in one temporary directory, removed at the end.
# Figures go in docs/PERFORMANCE.md (with the machine and this command).
set -euo pipefail
BIN=$(realpath "$1")
ROUNDS=${2:-3}
DURATION=${3:-10}
CONNS=${4:-48}
SERVER_THREADS=${5:-2}
CONTAIN_ROUNDS=${6:-200}
CONFIGS=${CONFIGS:-"sqlite pg1 pg2 pg3"}
GATEWAY=${GATEWAY:-1}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
ISSUER=https://custody.bench
NSESSIONS=16
command -v wrk >/dev/null 2>&1 || { echo "multi_node_bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || { echo "multi_node_bench: PostgreSQL server binaries are missing (apt-get install postgresql)" >&2; exit 1; }

# NODE_CPU: one cgroup per node name (n1, n2, ...) under CGROUP, made when a node of that name
# first starts and reused by later configurations; removed (children first) in cleanup, after the
# nodes have exited.
NODE_CPU=${NODE_CPU:-}
CGROUP=""
if [ -n "$NODE_CPU" ]; then
  CGCPU=/sys/fs/cgroup/cpu
  [ "$(id -u)" -eq 0 ] || { echo "multi_node_bench: NODE_CPU needs root (it writes cgroups)" >&2; exit 1; }
  [ -f "$CGCPU/cpu.cfs_quota_us" ] ||
    { echo "multi_node_bench: NODE_CPU needs the cgroup v1 cpu controller at $CGCPU" >&2; exit 1; }
  QUOTA_US=$(awk -v c="$NODE_CPU" 'BEGIN {if (c + 0 > 0 && c + 0 <= 64) printf "%d", c * 100000}')
  if [ -z "$QUOTA_US" ] || [ "$QUOTA_US" -lt 1000 ]; then
    echo "multi_node_bench: NODE_CPU must be a number of CPUs between 0.01 and 64, e.g. 0.25" >&2
    exit 1
  fi
  CGROUP=$CGCPU/multi_node_bench.$$
fi

WORK=$(mktemp -d /tmp/multi_node_bench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
AS=()
if [ "$(id -u)" -eq 0 ]; then
  AS=(setpriv --reuid="$(id -u nobody)" --regid="$(id -g nobody)" --clear-groups --)
fi
node_cgroup() {  # NAME: makes (once) the node's cgroup with its quota and prints its path
  local cg="$CGROUP/$1"
  if [ ! -d "$cg" ]; then
    mkdir -p "$cg"
    echo 100000 >"$cg/cpu.cfs_period_us"
    echo "$QUOTA_US" >"$cg/cpu.cfs_quota_us"
  fi
  echo "$cg"
}
# Periods in which the nodes were throttled, and periods in which they ran, summed over the nodes'
# cgroups: "throttled running".
throttle_of() {
  if [ -z "$CGROUP" ] || [ ! -d "$CGROUP" ]; then echo "0 0"; return; fi
  cat "$CGROUP"/*/cpu.stat 2>/dev/null | awk '$1 == "nr_throttled" {t += $2} $1 == "nr_periods" {p += $2} END {print t + 0, p + 0}'
}
stop_nodes() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}
cleanup() {
  stop_nodes
  [ -f "$WORK/pg/data/postmaster.pid" ] && "${AS[@]}" "$PGBIN/pg_ctl" -D "$WORK/pg/data" -m fast -w stop >/dev/null 2>&1
  if [ -n "$CGROUP" ] && [ -d "$CGROUP" ]; then
    local cg
    for cg in "$CGROUP"/*/; do
      if [ -d "$cg" ]; then rmdir "$cg" || true; fi
    done
    rmdir "$CGROUP" || echo "multi_node_bench: could not remove $CGROUP" >&2
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
# Exit (running cleanup) on Ctrl-C or kill too, so no node or cgroup outlives the script.
trap 'exit 130' INT
trap 'exit 143' TERM
load() { cut -d' ' -f1-3 /proc/loadavg; }
# CPU seconds (user + system) used so far by the nodes and by the PostgreSQL server's processes,
# to tell where a run's time went.
TICK=$(getconf CLK_TCK)
cpu_of() { cat "$@" 2>/dev/null | awk -v t="$TICK" '{s += $14 + $15} END {printf "%.1f", s / t}'; }
# shellcheck disable=SC2046  # one argument per file, split on purpose
cpu_nodes() { cpu_of $(printf '/proc/%s/stat ' "${PIDS[@]}"); }
cpu_pg() {
  local pm
  pm=$(head -1 "$WORK/pg/data/postmaster.pid")
  # shellcheck disable=SC2046
  cpu_of "/proc/$pm/stat" $(ps --ppid "$pm" -o pid= | sed 's:.*:/proc/&/stat:' | tr -d ' ')
}

# --- The throwaway PostgreSQL cluster.
mkdir -p "$WORK/pg"
[ ${#AS[@]} -gt 0 ] && chown "$(id -u nobody):$(id -g nobody)" "$WORK/pg"
"${AS[@]}" "$PGBIN/initdb" -D "$WORK/pg/data" -U custody -A trust -E UTF8 --no-instructions >"$WORK/initdb.log" 2>&1 ||
  { cat "$WORK/initdb.log" >&2; exit 1; }
PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PGOPTS="-p $PGPORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c max_connections=400"
[ "${PGSS:-0}" = 1 ] && PGOPTS+=" -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
"${AS[@]}" "$PGBIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/log" -w -o "$PGOPTS" start >/dev/null
psql_() { "$PGBIN/psql" -q -X -h 127.0.0.1 -p "$PGPORT" -U custody -d postgres "$@"; }
[ "${PGSS:-0}" = 1 ] && psql_ -c "CREATE EXTENSION pg_stat_statements" >/dev/null
DB=0
new_database() {  # sets DBURL to a fresh, empty database
  DB=$((DB + 1))
  psql_ -c "CREATE DATABASE b$DB" >/dev/null
  DBURL="postgresql://custody@127.0.0.1:$PGPORT/b$DB"
}
# The key-encryption key every PostgreSQL node shares.
CUSTODY_STORAGE_KEY_ENCRYPTION_KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export CUSTODY_STORAGE_KEY_ENCRYPTION_KEY

# --- Nodes.
URLS=()
ADMIN=""
start_node() {  # NAME BACKEND(sqlite|postgres): appends its URL to URLS; ADMIN from the first
  local dir="$WORK/run/$1" i
  mkdir -p "$dir"
  local args=(serve --quickstart --listen 127.0.0.1:0 --data-dir "$dir/data" --threads "$SERVER_THREADS"
              --log-level warn --set "identity.issuer=$ISSUER")
  [ "$2" = postgres ] && args+=(--set storage.backend=postgres)
  if [ -n "$CGROUP" ]; then
    # Into its cgroup before exec, so every thread the node makes is capped from the start.
    # shellcheck disable=SC2016  # $0/$@ are the inner shell's
    CUSTODY_STORAGE_POSTGRES_URL=${DBURL:-} sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' \
      "$(node_cgroup "$1")" "$BIN" "${args[@]}" >"$dir/out" 2>"$dir/err" &
  else
    CUSTODY_STORAGE_POSTGRES_URL=${DBURL:-} "$BIN" "${args[@]}" >"$dir/out" 2>"$dir/err" &
  fi
  PIDS+=($!)
  for i in $(seq 300); do
    if grep -q '"event":"listening"' "$dir/out" 2>/dev/null; then
      URLS+=("$(grep '"event":"listening"' "$dir/out" | sed -E 's/.*"url":"([^"]+)".*/\1/' | sed 's:/$::')")
      if [ -z "$ADMIN" ]; then
        ADMIN=$(grep '"event":"admin_token"' "$dir/out" | sed -E 's/.*"token":"([^"]+)".*/\1/')
      fi
      return 0
    fi
    kill -0 "${PIDS[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "multi_node_bench: node $1 did not start:" >&2
  cat "$dir/err" >&2
  exit 1
}
start_config() {  # CONFIG: starts its nodes (fresh), registers the agent, publishes the policy
  local config=$1 n i
  stop_nodes
  rm -rf "$WORK/run"
  URLS=()
  ADMIN=""
  if [ "$config" = sqlite ]; then
    DBURL=""
    start_node n1 sqlite
  else
    n=${config#pg}
    new_database
    for i in $(seq "$n"); do start_node "n$i" postgres; done
  fi
  local u=${URLS[0]}
  SECRET=$(curl -sf -X POST "$u/v1/agents" -H "Authorization: Bearer $ADMIN" \
    -H 'Content-Type: application/json' \
    -d '{"name":"bench","description":"multi-node bench","environment":"dev","grants":["github/*"],
         "permissions":["assert_initiator"],"max_delegation_depth":3,"client_secret":true}' |
    sed -E 's/.*"client_secret":"([^"]+)".*/\1/')
  printf '%s\n' 'permit(principal == Agent::"bench", action == Action::"call_tool", resource in Server::"github");' \
    >"$WORK/policy.cedar"
  "$BIN" policy publish "$WORK/policy.cedar" --token "$ADMIN" --server "$u" >/dev/null
}
sessions() {  # TOKENS: NSESSIONS session tokens of the agent, exchanged at the first node
  local u=${URLS[0]} svid i
  svid=$(curl -sf -X POST "$u/oauth2/token" -H 'Content-Type: application/x-www-form-urlencoded' \
    -d "grant_type=client_credentials&client_id=bench&client_secret=$SECRET&audience=$ISSUER" |
    sed -E 's/.*"access_token":"([^"]+)".*/\1/')
  TOKENS=""
  for i in $(seq "$NSESSIONS"); do
    TOKENS+=" $(curl -sf -X POST "$u/oauth2/token" -H 'Content-Type: application/x-www-form-urlencoded' \
      -d "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&client_id=bench&client_secret=$SECRET&audience=$ISSUER/mcp&subject_token=%7B%22sub%22%3A%22bench-initiator%22%7D&subject_token_type=urn:custody:params:oauth:token-type:initiator-assertion&actor_token=$svid&actor_token_type=urn:ietf:params:oauth:token-type:jwt" |
      sed -E 's/.*"access_token":"([^"]+)".*/\1/')"
  done
  # The policy published at the first node is in force at every node (pushed or polled).
  local tok node ok
  tok=$(echo "$TOKENS" | awk '{print $1}')
  for node in "${URLS[@]}"; do
    ok=0
    for i in $(seq 100); do
      if curl -sf -X POST "$node/v1/actions:authorize" -H "Authorization: Bearer $tok" \
           -H 'Content-Type: application/json' \
           -d '{"action":"call_tool","target":{"server":"github","tool":"get_issue"}}' |
         grep -q '"decision":"allow"'; then ok=1; break; fi
      sleep 0.1
    done
    [ $ok = 1 ] || { echo "multi_node_bench: $node does not allow the session" >&2; exit 1; }
  done
}
# One wrk per node at once; prints one line and appends "round config workload total" to results.
measure() {  # ROUND CONFIG WORKLOAD LUA PATH
  local round=$1 config=$2 workload=$3 lua=$4 path=$5 n=${#URLS[@]} i c before after total=0 line=""
  c=$((CONNS / n))
  local wrks=() cn0 cp0 cn1 cp1 th0 th1 throttled=""
  before=$(load)
  cn0=$(cpu_nodes)
  cp0=$(cpu_pg)
  th0=$(throttle_of)
  [ "${PGSS:-0}" = 1 ] && psql_ -c "SELECT pg_stat_statements_reset()" >/dev/null
  for i in $(seq 0 $((n - 1))); do
    TOKEN=$ADMIN BATCH=1 TOKENS=$TOKENS wrk -t1 -c"$c" -d"${DURATION}s" --latency -s "$HERE/$lua" \
      "${URLS[$i]}$path" >"$WORK/wrk.$i" 2>&1 &
    wrks+=($!)
  done
  wait "${wrks[@]}" || true
  after=$(load)
  cn1=$(cpu_nodes)
  cp1=$(cpu_pg)
  th1=$(throttle_of)
  if [ -n "$CGROUP" ]; then
    throttled=$(echo "$th0 $th1" | awk '{p = $4 - $2; printf " (nodes capped at %s CPU each, throttled in %.0f%% of their periods)", c, (p > 0 ? 100 * ($3 - $1) / p : 0)}' c="$NODE_CPU")
  fi
  for i in $(seq 0 $((n - 1))); do
    local rps p50 p99 bad
    rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.$i")
    p50=$(awk '$1 == "50%" {print $2}' "$WORK/wrk.$i")
    p99=$(awk '$1 == "99%" {print $2}' "$WORK/wrk.$i")
    bad=$(awk '/Non-2xx|Socket errors/ {printf " [%s]", $0}' "$WORK/wrk.$i")
    [ -n "$rps" ] || { echo "multi_node_bench: wrk failed:" >&2; cat "$WORK/wrk.$i" >&2; exit 1; }
    total=$(awk -v a="$total" -v b="$rps" 'BEGIN {printf "%.0f", a + b}')
    line+=" node$((i + 1)) ${rps%.*}/s p50 $p50 p99 $p99$bad;"
  done
  printf 'round %s %-6s %-9s %6s/s  (%d x %d conns:%s) cpu s: custody %s%s postgres %s; load %s -> %s\n' \
    "$round" "$config" "$workload" "$total" "$n" "$c" "$line" \
    "$(awk -v a="$cn0" -v b="$cn1" 'BEGIN {printf "%.1f", b - a}')" "$throttled" \
    "$(awk -v a="$cp0" -v b="$cp1" 'BEGIN {printf "%.1f", b - a}')" "$before" "$after"
  echo "$round $config $workload $total" >>"$WORK/results"
  if [ "${PGSS:-0}" = 1 ] && [ "$config" != sqlite ]; then
    pgss_top "$(cat "$WORK"/wrk.* | awk '/requests in/ {s += $1} END {print s}')"
  fi
}
# PGSS=1: the statements that took the most server time since the last reset, with their calls
# per request (of $1 requests).
pgss_top() {
  psql_ -A -F ' | ' -t -c "SELECT round(calls::numeric / $1, 2) AS per_request,
      round(mean_exec_time::numeric, 3) AS mean_ms, round(total_exec_time::numeric) AS total_ms,
      regexp_replace(left(query, 110), '\s+', ' ', 'g')
    FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 12" |
    sed 's/^/    pgss: /'
}

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $(uname -r)"
echo "custody: $BIN; PostgreSQL: $("$PGBIN/postgres" --version)"
echo "$ROUNDS rounds of: $CONFIGS; ${DURATION}s per run; $CONNS connections in all (split over the nodes, wrk -t1 each); $SERVER_THREADS worker threads per node"
[ -n "$CGROUP" ] && echo "each node capped at $NODE_CPU CPU (cgroup $CGROUP/nI, cfs_quota_us $QUOTA_US per 100000): a simulation of separate machines"
: >"$WORK/results"
for round in $(seq "$ROUNDS"); do
  for config in $CONFIGS; do
    start_config "$config"
    sessions
    measure "$round" "$config" appends http_bench_post.lua /v1/ledger/entries
    measure "$round" "$config" authorize authorize_bench.lua ""
  done
done
stop_nodes

echo "== summary (requests/s summed over the nodes; one column per round)"
for workload in appends authorize; do
  for config in $CONFIGS; do
    printf '%-9s %-6s %s\n' "$workload" "$config" \
      "$(awk -v w="$workload" -v c="$config" '$2 == c && $3 == w {printf "%s ", $4}' "$WORK/results")"
  done
  for pair in "pg1 sqlite" "pg3 pg1" "pg2 pg1"; do
    set -- $pair
    case " $CONFIGS " in *" $1 "*) ;; *) continue ;; esac
    case " $CONFIGS " in *" $2 "*) ;; *) continue ;; esac
    printf '%-9s %s/%s per round: %s\n' "$workload" "$1" "$2" "$(awk -v w="$workload" -v a="$1" -v b="$2" '
      $3 == w && $2 == a {x[$1] = $4} $3 == w && $2 == b {y[$1] = $4}
      END {for (r = 1; r in x || r in y; ++r) if (r in x && r in y && y[r] > 0) printf "%.2f ", x[r] / y[r]}' "$WORK/results")"
  done
done

# --- Cross-node containment latency: two fresh PostgreSQL nodes.
if [ "$CONTAIN_ROUNDS" -gt 0 ]; then
  start_config pg2
  echo "== containment (load $(load))"
  node "$HERE/containment_latency.mjs" "${URLS[0]}" "${URLS[1]}" "$ADMIN" "$ISSUER" bench "$SECRET" "$CONTAIN_ROUNDS"
  node "$HERE/containment_latency.mjs" "${URLS[0]}" "${URLS[0]}" "$ADMIN" "$ISSUER" bench "$SECRET" "$CONTAIN_ROUNDS"
  echo "   (load $(load))"
  stop_nodes
fi

# --- Gateway overhead per tools/call at concurrency 1: PostgreSQL, then SQLite.
if [ "$GATEWAY" = 1 ]; then
  new_database
  echo "== gateway overhead, PostgreSQL (load $(load))"
  [ "${PGSS:-0}" = 1 ] && psql_ -c "SELECT pg_stat_statements_reset()" >/dev/null
  (cd "$ROOT/tests/mcp" && BENCH_CONFIG='storage.backend = "postgres"' CUSTODY_STORAGE_POSTGRES_URL=$DBURL \
    LEVELS=1 node overhead_bench.mjs "$BIN" "$ROOT" 2000)
  # Per gateway call: 2,000 timed calls through each of the two upstream kinds (plus warm-ups).
  [ "${PGSS:-0}" = 1 ] && pgss_top 4000
  echo "== gateway overhead, SQLite (load $(load))"
  (cd "$ROOT/tests/mcp" && LEVELS=1 node overhead_bench.mjs "$BIN" "$ROOT" 2000)
  echo "   (load $(load))"
fi
