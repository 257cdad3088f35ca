#!/usr/bin/env bash
# Installs the dependencies, builds quantal (Release) and runs every test (Catch2 + pytest via ctest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DQUANTAL_WARNINGS_AS_ERRORS="${QUANTAL_WARNINGS_AS_ERRORS:-OFF}" >/dev/null
cmake --build build -j "$(nproc)"
ctest --test-dir build --output-on-failure -j "$(nproc)"
