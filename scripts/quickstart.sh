#!/usr/bin/env bash
# Installs what is missing, builds the release preset and runs the ledger demo on an embedded
# SQLite file in ./custody-data (no other service needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh release custody
mkdir -p custody-data
exec ./build/release/src/cli/custody ledger demo --db custody-data/ledger.db
