#!/usr/bin/env bash
# Installs what is missing, checks the locking annotations (the tsa preset: clang with
# -Werror=thread-safety, libraries and binary only), builds the fuzz preset and runs every fuzzer
# for 10 s on its seeds (scripts/fuzz.sh), builds the dev preset (ASan + UBSan) and runs the whole
# CTest suite, including the end-to-end tests that drive real processes, so the output ends with
# CTest's summary line. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then
  bash scripts/install-deps.sh
else
  bash scripts/install-deps.sh || { echo "test: run as root to install packages" >&2; exit 1; }
fi
# Node packages for tests against real peers (pinned by each folder's package-lock.json).
for lock in tests/*/package-lock.json; do
  [ -e "$lock" ] || continue
  dir="$(dirname "$lock")"
  if [ ! -d "$dir/node_modules" ] || [ "$lock" -nt "$dir/node_modules" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done
bash scripts/build.sh tsa
# The fuzzers, each for a bounded time over its committed seed corpus (fails on any finding);
# before the suite, so the run ends with CTest's summary line.
bash scripts/fuzz.sh 10
bash scripts/build.sh dev
ctest --preset dev "$@"
