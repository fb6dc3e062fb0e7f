#!/usr/bin/env bash
# Runs every built fuzzer for a bounded time over its seed corpus.
# Usage: run-fuzzers.sh BUILD_DIR SECONDS
set -euo pipefail
build=$1
seconds=${2:-6}
root=$(cd "$(dirname "$0")/.." && pwd)
passed=0
failed=0
for f in "$build"/fuzz/fuzz_*; do
  [ -x "$f" ] || continue
  name=$(basename "$f")
  corpus="$root/fuzz/corpus/${name#fuzz_}"
  work=$(mktemp -d)
  seeds=()
  [ -d "$corpus" ] && seeds+=("$corpus")
  echo "fuzz: $name for ${seconds}s"
  if "$f" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=0 \
       -artifact_prefix="$work/" "$work" "${seeds[@]}" >"$work/log" 2>&1; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "fuzz: $name FAILED; last lines:"
    tail -40 "$work/log"
    # Keep the failing inputs: the work directory goes below.
    kept="$build/fuzz-artifacts/$name"
    mkdir -p "$kept"
    for a in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
      [ -e "$a" ] && cp "$a" "$kept/" && echo "fuzz: kept $kept/$(basename "$a") (replay: $f $kept/$(basename "$a"))"
    done
    cp "$work/log" "$kept/log"
  fi
  rm -rf "$work"
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
