#!/usr/bin/env bash
# `make up`: until the vault exists, scans the bundled sample documents.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "mamori: scanning the sample documents in examples/ (mamori scan examples/)"
./build/src/cli/mamori scan examples/ || rc=$?
rc=${rc:-0}
if [ "$rc" -eq 2 ]; then exit 2; fi
echo
echo "mamori: done. Try: ./build/src/cli/mamori scan --format json PATH"
