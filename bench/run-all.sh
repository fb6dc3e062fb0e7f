#!/usr/bin/env bash
# `make bench`: every benchmark, each against its natural peer in the same run.
# Usage: bench/run-all.sh [BUILD_DIR]. Takes a while; run it on an idle machine.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
status=0
run() {
  echo
  echo "=== $*"
  "$@" || { echo "=== FAILED: $*"; status=1; }
}
for b in "$build"/bench/*_bench; do
  [ -x "$b" ] && run "$b" --benchmark_min_time=0.2
done
run bash "$root/bench/scan_vs_ripgrep.sh" "$build"
run bash "$root/bench/serve_vs_nginx.sh" "$build"
run bash "$root/bench/icap_vs_squid.sh" "$build"
run bash "$root/bench/milter_vs_postfix.sh" "$build"
exit $status
