#!/usr/bin/env bash
# Builds the fuzz preset (Debian's clang + libFuzzer, every library instrumented, ASan + UBSan)
# and runs each fuzzer for a bounded time on a scratch copy of its committed seed corpus
# (fuzz/corpus/<name>/), so nothing new is written into the tree. Exits non-zero if any fuzzer
# crashes, trips a sanitizer, breaks a property it checks or hangs; the input that did it is
# kept in build/fuzz/artifacts/ and named in the output.
#
# Usage: scripts/fuzz.sh [SECONDS] [NAME...]
#   SECONDS  per fuzzer (default 15); 0 runs each committed seed once (a regression check)
#   NAME     jcs jsonrpc note receipt evidence jws policy_parser (default: all)
# CUSTODY_BUILD_LOCK=FILE builds under `flock FILE` (a machine shared with other builds).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-15}"
shift || true
names=("$@")
[ "${#names[@]}" -gt 0 ] || names=(jcs jsonrpc note receipt evidence jws policy_parser)

lock=()
[ -n "${CUSTODY_BUILD_LOCK:-}" ] && lock=(flock "$CUSTODY_BUILD_LOCK")
"${lock[@]}" cmake --preset fuzz >/dev/null
"${lock[@]}" cmake --build --preset fuzz

artifacts="$PWD/build/fuzz/artifacts"
mkdir -p "$artifacts"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failed=()
for name in "${names[@]}"; do
  bin="build/fuzz/fuzz/custody_${name}_fuzz"
  seeds="fuzz/corpus/$name"
  [ -x "$bin" ] || { echo "fuzz: no fuzzer $bin" >&2; exit 2; }
  [ -d "$seeds" ] || { echo "fuzz: no seed corpus $seeds" >&2; exit 2; }
  cp -r "$seeds" "$scratch/$name"
  if [ "$seconds" -eq 0 ]; then
    limit=(-runs=0)
  else
    limit=(-max_total_time="$seconds")
  fi
  echo "fuzz: $name (${seconds}s)"
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb: memory blow-ups are findings too.
  if ! "$bin" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$artifacts/$name-" "$scratch/$name" >"$scratch/$name.log" 2>&1; then
    failed+=("$name")
    tail -n 60 "$scratch/$name.log" >&2
  fi
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added):' \
    "$scratch/$name.log" | sed "s/^/  /" || true
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in $artifacts)" >&2
  exit 1
fi
echo "fuzz: all ${#names[@]} fuzzers ran clean"
