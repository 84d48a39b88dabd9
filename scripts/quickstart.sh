#!/usr/bin/env bash
# Installs what is missing, builds the release preset and runs `custody serve --quickstart` on
# ./custody-data: it creates the directory (0700), the ledger key and an admin token (printed
# once) if missing, then serves on 127.0.0.1:8750 until Ctrl-C (no other service needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh release custody
exec ./build/release/src/cli/custody serve --quickstart --data-dir ./custody-data "$@"
