#!/usr/bin/env bash
# Throughput of the CLI's line pipelines: `custody ledger append` (durable appends, a receipt per
# event) and `custody cedar authorize` (a decision per request), fed through a pipe from a file
# built here, output to a file. Each run uses a fresh temporary directory (a new ledger).
# Usage: bench/cli_stdin_bench.sh BINARY [events=200000] [ledger|cedar|both]
# Prints one line per command: name, events, seconds, events/s. Figures go in
# docs/PERFORMANCE.md with the machine and this command.
set -euo pipefail
BIN=${1:?usage: cli_stdin_bench.sh BINARY [events] [ledger|cedar|both]}
N=${2:-200000}
WHAT=${3:-both}
BIN=$(realpath "$BIN")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

now() { date +%s.%N; }
report() {  # name start end lines_out
  awk -v name="$1" -v s="$2" -v e="$3" -v n="$4" \
    'BEGIN { printf "%-16s %d events  %.3f s  %.0f events/s\n", name, n, e - s, n / (e - s) }'
}

if [ "$WHAT" = ledger ] || [ "$WHAT" = both ]; then
  # ~512-byte events: the size the ledger benchmark and the issue use.
  awk -v n="$N" 'BEGIN {
    pad = sprintf("%380s", ""); gsub(/ /, "x", pad);
    for (i = 0; i < n; i++)
      printf "{\"kind\":\"action.decision\",\"n\":%d,\"actor\":{\"agent\":\"planner-%d\",\"session\":\"s-%d\"},\"target\":{\"server\":\"github\",\"tool\":\"create_issue\"},\"pad\":\"%s\"}\n", i, i % 97, i % 1013, pad
  }' >"$WORK/events.jsonl"
  mkdir "$WORK/l"
  s=$(now)
  cat "$WORK/events.jsonl" | "$BIN" ledger append --db "$WORK/l/l.db" >"$WORK/receipts.jsonl"
  e=$(now)
  got=$(grep -c '^{"index":' "$WORK/receipts.jsonl")
  [ "$got" = "$N" ] || { echo "ledger append: $got receipts for $N events" >&2; exit 1; }
  report "ledger append" "$s" "$e" "$N"
fi

if [ "$WHAT" = cedar ] || [ "$WHAT" = both ]; then
  cat >"$WORK/p.cedar" <<'EOF'
permit(principal in Group::"planners", action == Action::"call", resource in Server::"github")
  when { context.verified && context.risk < 50 };
forbid(principal, action == Action::"call", resource == Tool::"delete_repo");
permit(principal == Agent::"auditor", action, resource) when { context.risk < 10 };
EOF
  cat >"$WORK/e.json" <<'EOF'
[{"uid":{"type":"Group","id":"planners"},"attrs":{},"parents":[]},
 {"uid":{"type":"Agent","id":"planner"},"attrs":{},"parents":[{"type":"Group","id":"planners"}]},
 {"uid":{"type":"Agent","id":"auditor"},"attrs":{},"parents":[]},
 {"uid":{"type":"Server","id":"github"},"attrs":{},"parents":[]},
 {"uid":{"type":"Tool","id":"create_issue"},"attrs":{},"parents":[{"type":"Server","id":"github"}]},
 {"uid":{"type":"Tool","id":"delete_repo"},"attrs":{},"parents":[{"type":"Server","id":"github"}]}]
EOF
  awk -v n="$N" 'BEGIN {
    split("planner auditor", agents, " "); split("create_issue delete_repo", tools, " ");
    for (i = 0; i < n; i++)
      printf "{\"principal\":{\"type\":\"Agent\",\"id\":\"%s\"},\"action\":{\"type\":\"Action\",\"id\":\"call\"},\"resource\":{\"type\":\"Tool\",\"id\":\"%s\"},\"context\":{\"verified\":%s,\"risk\":%d,\"trace\":\"00-%032d-%016d-01\"}}\n", agents[i % 2 + 1], tools[int(i / 2) % 2 + 1], (i % 3 ? "true" : "false"), i % 100, i, i
  }' >"$WORK/requests.jsonl"
  s=$(now)
  cat "$WORK/requests.jsonl" |
    "$BIN" cedar authorize --policies "$WORK/p.cedar" --entities "$WORK/e.json" >"$WORK/decisions.jsonl"
  e=$(now)
  got=$(grep -c '^{"decision":' "$WORK/decisions.jsonl")
  [ "$got" = "$N" ] || { echo "cedar authorize: $got decisions for $N requests" >&2; exit 1; }
  report "cedar authorize" "$s" "$e" "$N"
fi
