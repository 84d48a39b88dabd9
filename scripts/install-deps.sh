#!/usr/bin/env bash
# Installs the Debian 12 packages Custody builds and tests with. Idempotent; run as root.
# Only packages that are missing are installed, so a machine that has them all does no network work.
set -euo pipefail

packages=(
  build-essential g++ cmake ninja-build pkg-config git
  clang
  libboost1.81-dev libssl-dev libsqlite3-dev sqlite3 libcli11-dev libtomlplusplus-dev
  libsodium-dev libpq-dev postgresql
  protobuf-compiler libprotobuf-dev zlib1g-dev  # OTLP ingest (src/ingest)
  libgtest-dev libgmock-dev libbenchmark-dev
  nodejs npm
  chromium  # a real browser for the consent page test (tests/oauth, playwright-core)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js may come from another source than Debian's package (the CI image has one); accept it.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  filtered=()
  for p in "${missing[@]}"; do
    case "$p" in nodejs|npm) ;; *) filtered+=("$p") ;; esac
  done
  missing=("${filtered[@]}")
fi

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages (${missing[*]}); run this script as root" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
