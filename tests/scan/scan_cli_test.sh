#!/usr/bin/env bash
# `mamori scan` as a user runs it: formats, exit codes, paths into archives and
# cells, masking, budgets, filters, stdin, thread-order stability and the
# progress bar on a terminal. Each check can fail.
# usage: scan_cli_test.sh MAMORI_BINARY SOURCE_DIR
set -uo pipefail
MAMORI="$1"; SRC="$2"
WORK="$(mktemp -d /tmp/scan_cli.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
export MAMORI_CACHE_DIR="$WORK/cache"
failures=0
pass() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
check() { local what="$1"; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }

EX="$SRC/examples"
# 1. Findings in the samples: exit 1, jsonl with a summary last.
"$MAMORI" scan "$EX" --format jsonl > "$WORK/ex.jsonl" 2> "$WORK/ex.err"; rc=$?
check "samples with personal data exit 1" test "$rc" -eq 1
check "jsonl ends with the summary" python3 - "$WORK/ex.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
s = lines[-1]["summary"]
assert s["files"] == 8 and s["errors"] == 0 and not s["incomplete"], s
assert s["findings"] == len(lines) - 1, (s["findings"], len(lines))
assert s["individuals"] > 0 and s["counts"]["jp.my_number"] > 0, s
for f in lines[:-1]:
    assert set(f) >= {"path", "type", "line", "column", "confidence", "score", "masked", "hash", "context"}, f
    assert "value" not in f
PY
check "xlsx findings carry Sheet!Cell paths" grep -q '"path":"[^"]*employee_master.xlsx![^"!]*![A-Z]\+[0-9]\+"' "$WORK/ex.jsonl"
check "zip members are named outer.zip!inner" grep -q 'bundle.zip!顧客/customers_sjis.csv' "$WORK/ex.jsonl"
check "mail attachments are scanned" grep -q 'mail_with_attachment.eml!' "$WORK/ex.jsonl"

# 2. Values are masked unless asked; --show-values shows them.
printf '氏名,個人番号\n山田 太郎,123456789018\n' > "$WORK/one.csv"
"$MAMORI" scan "$WORK/one.csv" --format jsonl > "$WORK/one.jsonl"
check "raw value never printed by default" bash -c "! grep -q 123456789018 '$WORK/one.jsonl' && grep -q '1234\*\*\*\*\*\*18' '$WORK/one.jsonl'"
"$MAMORI" scan "$WORK/one.csv" --format jsonl --show-values > "$WORK/one_values.jsonl"
check "--show-values prints the value" grep -q '"value":"123456789018"' "$WORK/one_values.jsonl"
check "hash is keyed and stable across runs" bash -c "diff <(grep -o '\"hash\":\"[0-9a-f]*\"' '$WORK/one.jsonl') <(grep -o '\"hash\":\"[0-9a-f]*\"' '$WORK/one_values.jsonl')"

# 3. Clean input exits 0; a missing path or a blown budget exits 2 and says so.
printf '本日の議事録を共有します。\n' > "$WORK/clean.txt"
"$MAMORI" scan "$WORK/clean.txt" -q; check "clean file exits 0" test $? -eq 0
"$MAMORI" scan "$WORK/nope.txt" --format jsonl > "$WORK/nope.jsonl" 2>&1; rc=$?
check "missing file exits 2" test "$rc" -eq 2
check "missing file is listed as incomplete with a reason" grep -q 'No such file' "$WORK/nope.jsonl"
"$MAMORI" scan "$WORK/one.csv" --max-file-size 10 --format jsonl > "$WORK/big.jsonl" 2>&1; rc=$?
check "file over --max-file-size exits 2 (incomplete, not skipped)" test "$rc" -eq 2
check "the budget is named in the summary" grep -q 'max_file_bytes' "$WORK/big.jsonl"

# 4. Filters: --types, --min-confidence, --fail-on, --exclude.
"$MAMORI" scan "$EX" --types jp.my_number --format jsonl > "$WORK/types.jsonl"
check "--types keeps only that type" python3 -c "
import json,sys
ls=[json.loads(l) for l in open('$WORK/types.jsonl')][:-1]
assert ls and all(f['type']=='jp.my_number' for f in ls)"
"$MAMORI" scan "$EX" --exclude '*.zip' --exclude '*.eml' --format jsonl > "$WORK/excl.jsonl"
check "--exclude drops matching files" bash -c "! grep -q 'bundle.zip\|\.eml' '$WORK/excl.jsonl'"
printf '注文番号 202610160001\n' > "$WORK/low.txt"
"$MAMORI" scan "$WORK/low.txt" --min-confidence low -q --fail-on high; rc=$?
check "--fail-on high ignores lower findings (exit 0)" test "$rc" -eq 0
"$MAMORI" scan "$WORK/low.txt" --min-confidence low --format jsonl > "$WORK/low.jsonl"
check "a low-confidence order number is listed but is not a person" bash -c "grep -q '\"confidence\":\"low\"' '$WORK/low.jsonl' && grep -q '\"individuals\":0' '$WORK/low.jsonl'"
"$MAMORI" scan "$EX" --bogus-flag >/dev/null 2>&1; check "unknown flag exits 2" test $? -eq 2
"$MAMORI" scan "$EX" --format xml >/dev/null 2> "$WORK/fmt.err"; rc=$?
check "bad --format exits 2 and says what to use" bash -c "[ $rc -eq 2 ] && grep -q 'text, json, jsonl or sarif' '$WORK/fmt.err'"

# 5. SARIF and JSON are single valid documents.
"$MAMORI" scan "$EX" --format sarif > "$WORK/ex.sarif"
check "sarif is SARIF 2.1.0 with results" python3 -c "
import json; d=json.load(open('$WORK/ex.sarif'))
assert d['version']=='2.1.0' and d['runs'][0]['results']"
"$MAMORI" scan "$EX" --format json > "$WORK/ex.json"
check "json is one document with findings and summary" python3 -c "
import json; d=json.load(open('$WORK/ex.json')); assert d['findings'] and d['summary']['files']==8"

# 6. stdin, and the same output whatever the thread count.
"$MAMORI" scan - --format jsonl < "$WORK/one.csv" > "$WORK/stdin.jsonl"
check "stdin is scanned as '-'" grep -q '"path":"-"' "$WORK/stdin.jsonl"
"$MAMORI" scan "$EX" --threads 1 --format jsonl | head -n -1 > "$WORK/t1"
"$MAMORI" scan "$EX" --threads 4 --format jsonl | head -n -1 > "$WORK/t4"
check "--threads 4 prints what --threads 1 prints, in order" cmp -s "$WORK/t1" "$WORK/t4"

# 7. Progress bar on a terminal (stderr), none when piped.
if command -v script >/dev/null; then
  script -qec "$MAMORI scan $EX --format jsonl > $WORK/tty.out" "$WORK/typescript" >/dev/null 2>&1
  check "progress bar on a TTY" grep -q 'files\]' "$WORK/typescript"
  check "no progress bar when stderr is not a TTY" bash -c "! grep -q 'files\]' '$WORK/ex.err'"
else
  fail "script(1) from bsdutils is needed for the TTY check"
fi

echo "scan cli: $failures failure(s)"
exit $((failures > 0))
