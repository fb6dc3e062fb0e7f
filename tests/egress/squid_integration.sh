#!/usr/bin/env bash
# Real integration test: curl -> Squid (ssl_bump) -> mamori icap -> HTTPS target,
# all on 127.0.0.1. Needs root (Squid drops to user proxy) and squid-openssl.
# Usage: squid_integration.sh MAMORI_BINARY SOURCE_DIR
set -euo pipefail
MAMORI=$1
SRC=$2
. "$SRC/tests/egress/squid_lib.sh"
fail() { echo "FAIL: $*"; FAILED=$((FAILED + 1)); }
pass() { echo "ok: $*"; PASSED=$((PASSED + 1)); }
PASSED=0
FAILED=0

squid_require || exit 1

WORK=$(mktemp -d /tmp/mamori-egress-it.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  squid_stop_all
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  if [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; else echo "kept $WORK"; fi
}
trap cleanup EXIT

SQUID_PORT=$(free_port)
ICAP_PORT=$(free_port)
TARGET_PORT=$(free_port)
HOOK_PORT=$(free_port)

# --- CA for ssl_bump, and a certificate for the target -----------------------
squid_make_certs "DNS:gigafile.nu,DNS:*.gigafile.nu,DNS:*.corp-approved.test,DNS:*.example-unknown.test,DNS:*.transfer-unknown.test"
cat > "$WORK/hosts" <<HOSTS
127.0.0.1 gigafile.nu 46.gigafile.nu files.corp-approved.test uploads.example-unknown.test bigfiles.transfer-unknown.test
HOSTS

# --- policy: the shipped lists, a test policy --------------------------------
mkdir -p "$WORK/policy"
cp "$SRC/rules/egress/destinations.yaml" "$WORK/policy/"
cat > "$WORK/policy/policy.yaml" <<POLICY
version: 1
settings: {preview_bytes: 4096, spool_memory_bytes: 8MiB, spool_max_bytes: 256MiB}
users: {by_ip: {"127.0.0.1": test-user}}
categories:
  approved:
    uploads: allow
    domains: [corp-approved.test]
    tenant_headers:
      - hosts: [corp-approved.test]
        headers: {Restrict-Access-To-Tenants: "example.co.jp", Restrict-Access-Context: "11111111-2222-3333-4444-555555555555"}
  personal_storage: {uploads: block}
  webmail: {uploads: inspect, max_upload_bytes: 10MB}
  unknown:
    uploads: inspect
    content: {block_types: [jp.my_number], max_individuals: 50}
caps:
  - {name: hourly, per: user_destination, window: 1h, max_bytes: 200MB, categories: [unknown]}
POLICY
"$MAMORI" icap --check --policy "$WORK/policy" >/dev/null || { echo "policy check failed"; exit 1; }

# --- webhook receiver (alerts) --------------------------------------------------
cat > "$WORK/hook.py" <<'HOOK'
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        with open(sys.argv[2], "ab") as f: f.write(self.rfile.read(n) + b"\n")
        self.send_response(204); self.end_headers()
HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
HOOK
python3 "$WORK/hook.py" "$HOOK_PORT" "$WORK/alerts.jsonl" & PIDS+=($!)
python3 "$SRC/tests/egress/upload_target.py" "$TARGET_PORT" "$WORK/target.pem" "$WORK/target.key" "$WORK/target.jsonl" & PIDS+=($!)

start_icap() {
  "$MAMORI" icap --listen "127.0.0.1:$ICAP_PORT" --policy "$WORK/policy" \
    --audit-jsonl "$WORK/audit.jsonl" --hash-key "$WORK/hash.key" --spool-dir "$WORK" \
    --cap-journal "$WORK/caps.journal" \
    --webhook "http://127.0.0.1:$HOOK_PORT/alert" --no-syslog 2>>"$WORK/icap.log" &
  ICAP_PID=$!
  PIDS+=($ICAP_PID)
  wait_port "$ICAP_PORT"
}
start_icap

# --- Squid ------------------------------------------------------------------------
SQUID_ACCESS_LOG="stdio:$WORK/access.log" squid_write_conf "$WORK" "$SQUID_PORT" "icap://127.0.0.1:$ICAP_PORT/reqmod"
chown -R proxy:proxy "$WORK"
squid_start "$WORK" "$SQUID_PORT" || exit 1

CURL=(curl -sS --max-time 60 --proxy "http://127.0.0.1:$SQUID_PORT" --cacert "$WORK/ca.pem" -H 'Expect:')

# --- data -----------------------------------------------------------------------------
python3 - "$WORK" <<'PY'
import random, sys
work = sys.argv[1]
def my_number(r):
    d = [r.randint(0, 9) for _ in range(11)]
    s = sum(int(d[10 - i]) * ((i + 2) if i < 6 else (i - 4)) for i in range(11))
    rem = s % 11
    return "".join(map(str, d)) + str(0 if rem <= 1 else 11 - rem)
r = random.Random(7)
with open(f"{work}/customers.csv", "w", encoding="utf-8") as f:
    f.write("氏名,マイナンバー,電話番号\n")
    for i in range(30):
        f.write(f"顧客{i},{my_number(r)},03-1234-{5000 + i}\n")
with open(f"{work}/clean.bin", "wb") as f:
    f.write(bytes(r.getrandbits(8) & 0x7f | 0x40 for _ in range(1 << 20)))

# Containers: raw bytes hide the numbers, only extraction finds them.
import gzip, io, json, zipfile
from xml.sax.saxutils import escape
def xlsx(path, rows):
    strings, cells = [], []
    for y, row in enumerate(rows, 1):
        cs = []
        for x, v in enumerate(row):
            strings.append(v)
            cs.append(f'<c r="{chr(65 + x)}{y}" t="s"><v>{len(strings) - 1}</v></c>')
        cells.append(f'<row r="{y}">{"".join(cs)}</row>')
    ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>')
        z.writestr("_rels/.rels", f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        z.writestr("xl/workbook.xml", f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{ns}" xmlns:r="{rel}"><sheets><sheet name="顧客" sheetId="1" r:id="rId1"/></sheets></workbook>')
        z.writestr("xl/_rels/workbook.xml.rels", f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="{rel}/sharedStrings" Target="sharedStrings.xml"/></Relationships>')
        z.writestr("xl/worksheets/sheet1.xml", f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{ns}"><sheetData>{"".join(cells)}</sheetData></worksheet>')
        z.writestr("xl/sharedStrings.xml", f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{ns}" count="{len(strings)}">' + "".join(f"<si><t>{escape(v)}</t></si>" for v in strings) + "</sst>")
people = [[f"顧客{i}", my_number(r), f"03-1234-{6000 + i}"] for i in range(30)]
xlsx(f"{work}/customers.xlsx", [["氏名", "マイナンバー", "電話番号"]] + people)
xlsx(f"{work}/clean.xlsx", [["品目", "数量", "備考"]] + [[f"部品{i}", str(i * 3), "在庫確認済み"] for i in range(30)])
with zipfile.ZipFile(f"{work}/export.zip", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("export/readme.txt", "monthly export\n")
    z.writestr("export/customers.csv", open(f"{work}/customers.csv", encoding="utf-8").read())
# Keys as a Japanese business system names them. (An English key such as
# "my_number" is not a My Number keyword for the detection rules: the bare
# 12-digit value is then only low confidence, below the policy's medium.)
records = [{"氏名": f"顧客{i}", "マイナンバー": my_number(r), "備考": "契約更新"} for i in range(10)]
with open(f"{work}/records.json.gz", "wb") as f:
    f.write(gzip.compress(json.dumps({"records": records}, ensure_ascii=False).encode()))
with open(f"{work}/clean.json.gz", "wb") as f:
    f.write(gzip.compress(json.dumps({"items": [{"sku": f"A-{i}", "qty": i} for i in range(200)]}).encode()))
PY
# Brotli bodies (Debian's python3-brotli is for the system Python).
/usr/bin/python3 - "$WORK" <<'PY' || { echo "python3-brotli is not installed (scripts/deps/egress.txt)"; exit 1; }
import brotli, gzip, sys
work = sys.argv[1]
for name in ("records", "clean"):
    with open(f"{work}/{name}.json.gz", "rb") as f:
        data = gzip.decompress(f.read())
    with open(f"{work}/{name}.json.br", "wb") as f:
        f.write(brotli.compress(data))
PY
# 50,000,000 bytes, like a GigaFile chunk: text, so that inspection passes it
# and only the cumulative cap can stop the series (binary content is blocked
# as not inspectable by itself; see check 4b).
yes 'meeting notes, nothing personal here. 会議の議事録です。' | head -c 50000000 > "$WORK/chunk.bin" || true
printf '\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9' > "$WORK/card.jpg"
chmod 644 "$WORK"/*.jpg "$WORK"/*.csv "$WORK"/*.bin "$WORK"/*.xlsx "$WORK"/*.zip "$WORK"/*.gz "$WORK"/*.br

audit_field() { python3 -c "import json,sys; r=[json.loads(l) for l in open('$WORK/audit.jsonl')]; print(json.dumps([x for x in r if x['event_id']=='$1']))"; }

# 1. My Numbers to GigaFile: blocked with the 403 page and an event id.
code=$("${CURL[@]}" -o "$WORK/r1.html" -w '%{http_code}' -F "file=@$WORK/customers.csv" \
  "https://46.gigafile.nu:$TARGET_PORT/upload_chunk.php" || true)
eid=$(grep -o 'X-Mamori-Event-Id[^<]*' "$WORK/r1.html" | head -1 || true)
eid=$(grep -o '<code>[0-9A-Z]*</code>' "$WORK/r1.html" | head -1 | sed 's/<[^>]*>//g' || true)
if [ "$code" = 403 ] && [ -n "$eid" ] && grep -q 'ブロック' "$WORK/r1.html" && grep -q 'Upload blocked' "$WORK/r1.html"; then
  if audit_field "$eid" | grep -q '"destination_blocked"'; then pass "gigafile upload blocked (403, event $eid, audited)"; else fail "gigafile block not audited ($eid)"; fi
else
  fail "gigafile upload: expected 403 with event id, got $code"; head -c 600 "$WORK/r1.html" || true
fi
grep -q '46.gigafile.nu' "$WORK/target.jsonl" 2>/dev/null && fail "gigafile upload reached the target" || true

# 2. The same to an approved domain passes with the tenant header added.
code=$("${CURL[@]}" -o "$WORK/r2.json" -w '%{http_code}' -F "file=@$WORK/customers.csv" \
  -H 'Restrict-Access-To-Tenants: attacker.example' \
  "https://files.corp-approved.test:$TARGET_PORT/upload" || true)
if [ "$code" = 200 ] && python3 - "$WORK/r2.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
h = {k.lower(): v for k, v in r["headers"].items()}
assert h.get("restrict-access-to-tenants") == "example.co.jp", h
assert h.get("restrict-access-context") == "11111111-2222-3333-4444-555555555555", h
assert r["length"] > 0
PY
then pass "approved upload passed with tenant headers (client copy replaced)"; else fail "approved upload: code $code"; cat "$WORK/r2.json" || true; fi

# 3. The same to an unknown destination: inspected by the detection engine, blocked.
code=$("${CURL[@]}" -o "$WORK/r3.html" -w '%{http_code}' -F "file=@$WORK/customers.csv" \
  "https://uploads.example-unknown.test:$TARGET_PORT/upload" || true)
if [ "$code" = 403 ] && grep -q 'sensitive_content' "$WORK/r3.html"; then pass "My Numbers to an unknown destination blocked after inspection"; else fail "unknown destination with My Numbers: got $code"; head -c 400 "$WORK/r3.html" || true; fi

# 4. A clean upload passes byte-identical.
want=$(sha256sum "$WORK/clean.bin" | cut -d' ' -f1)
code=$("${CURL[@]}" -o "$WORK/r4.json" -w '%{http_code}' -H 'Content-Type: application/octet-stream' \
  --data-binary "@$WORK/clean.bin" "https://uploads.example-unknown.test:$TARGET_PORT/clean" || true)
got=$(python3 -c "import json; print(json.load(open('$WORK/r4.json'))['sha256'])" 2>/dev/null || true)
if [ "$code" = 200 ] && [ "$got" = "$want" ]; then pass "clean 1 MiB upload passed byte-identical"; else fail "clean upload: code $code sha $got want $want"; fi

# 4b. A picture (a photo of a card) has no text to inspect: blocked, not called clean.
code=$("${CURL[@]}" -o "$WORK/r4b.html" -w '%{http_code}' -F "file=@$WORK/card.jpg" \
  "https://uploads.example-unknown.test:$TARGET_PORT/upload" || true)
if [ "$code" = 403 ] && grep -q 'not_inspected' "$WORK/r4b.html" && grep -q 'cannot be inspected' "$WORK/r4b.html"; then
  pass "an image upload to an unknown destination blocked as not inspectable"
  # A file name can name a person: the audit record has it masked.
  if grep '"not_inspected"' "$WORK/audit.jsonl" | grep -q 'c\*\*\*\.jpg (image)' \
     && ! grep -q 'card\.jpg' "$WORK/audit.jsonl"; then
    pass "the audit record names the picture masked (c***.jpg)"
  else fail "audit record of the image upload"; grep '"not_inspected"' "$WORK/audit.jsonl" | head -2; fi
else
  fail "image upload: expected 403 not_inspected, got $code"; head -c 400 "$WORK/r4b.html" || true
fi

# 5. Ten 50 MB chunks to one destination: summed, blocked past the 200 MB cap.
# The service is killed (-9) after the second chunk and restarted cleanly
# after the third: the cap journal keeps the sum across both.
ok=0; blocked=0
for i in $(seq 1 10); do
  if [ "$i" = 3 ]; then
    kill -9 "$ICAP_PID"; wait "$ICAP_PID" 2>/dev/null || true; start_icap
  elif [ "$i" = 4 ]; then
    kill "$ICAP_PID"; wait "$ICAP_PID" 2>/dev/null || true; start_icap
  fi
  code=$("${CURL[@]}" -o "$WORK/r5.out" -w '%{http_code}' -H 'Content-Type: application/octet-stream' \
    --data-binary "@$WORK/chunk.bin" "https://bigfiles.transfer-unknown.test:$TARGET_PORT/upload_chunk.php?chunk=$i" 2>/dev/null || true)
  if [ "$code" = 200 ]; then ok=$((ok + 1)); elif [ "$code" = 403 ] || [ "$code" = 000 ]; then blocked=$((blocked + 1)); fi
done
caps=$(grep -c '"volume_cap"' "$WORK/audit.jsonl" || true)
reached=$(grep -c 'upload_chunk.php?chunk=' "$WORK/target.jsonl" || true)
if [ "$ok" = 4 ] && [ "$blocked" = 6 ] && [ "$caps" = 6 ] && [ "$reached" = 4 ]; then
  pass "10 x 50 MB chunks across a kill -9 and a restart: 4 passed, 6 blocked by the cumulative cap"
else
  fail "chunked uploads: ok=$ok blocked=$blocked audited caps=$caps reached target=$reached"
fi
sleep 1
if grep -q '"volume_cap"' "$WORK/alerts.jsonl" 2>/dev/null; then pass "cap alert delivered to the webhook"; else fail "no webhook alert for the cap"; fi

# 7. Containers: an .xlsx and a .zip holding My Numbers.
for f in customers.xlsx export.zip; do
  # To personal storage: blocked by destination, before the body is read.
  code=$("${CURL[@]}" -o "$WORK/r7.html" -w '%{http_code}' -F "file=@$WORK/$f" \
    "https://46.gigafile.nu:$TARGET_PORT/upload_chunk.php?f=$f" || true)
  if [ "$code" = 403 ] && grep -q 'destination_blocked' "$WORK/r7.html"; then pass "$f to gigafile.nu blocked"; else fail "$f to gigafile.nu: got $code"; fi
  # To an unknown destination: blocked only because extraction found the numbers.
  code=$("${CURL[@]}" -o "$WORK/r7.html" -w '%{http_code}' -F "file=@$WORK/$f" \
    "https://uploads.example-unknown.test:$TARGET_PORT/upload?f=$f" || true)
  if [ "$code" = 403 ] && grep -q 'sensitive_content' "$WORK/r7.html"; then pass "$f to an unknown destination blocked after extraction"; else fail "$f to an unknown destination: got $code"; head -c 300 "$WORK/r7.html" || true; fi
done
grep -q 'f=customers.xlsx\|f=export.zip' "$WORK/target.jsonl" && fail "a container with My Numbers reached the target" || true
code=$("${CURL[@]}" -o "$WORK/r7.json" -w '%{http_code}' -F "file=@$WORK/clean.xlsx" \
  "https://uploads.example-unknown.test:$TARGET_PORT/upload?f=clean.xlsx" || true)
if [ "$code" = 200 ]; then pass "a clean .xlsx passes"; else fail "clean .xlsx: got $code"; fi

# 8. A gzip-encoded JSON body: decoded, then inspected.
code=$("${CURL[@]}" -o "$WORK/r8.html" -w '%{http_code}' -H 'Content-Type: application/json' \
  -H 'Content-Encoding: gzip' --data-binary "@$WORK/records.json.gz" \
  "https://uploads.example-unknown.test:$TARGET_PORT/api/records" || true)
if [ "$code" = 403 ] && grep -q 'sensitive_content' "$WORK/r8.html"; then pass "gzip JSON with My Numbers blocked"; else fail "gzip JSON with My Numbers: got $code"; fi
want=$(sha256sum "$WORK/clean.json.gz" | cut -d' ' -f1)
code=$("${CURL[@]}" -o "$WORK/r8.json" -w '%{http_code}' -H 'Content-Type: application/json' \
  -H 'Content-Encoding: gzip' --data-binary "@$WORK/clean.json.gz" \
  "https://uploads.example-unknown.test:$TARGET_PORT/api/items" || true)
got=$(python3 -c "import json; print(json.load(open('$WORK/r8.json'))['sha256'])" 2>/dev/null || true)
if [ "$code" = 200 ] && [ "$got" = "$want" ]; then pass "clean gzip JSON passes, still compressed and byte-identical"; else fail "clean gzip JSON: $code"; fi
# The same with Content-Encoding: br.
code=$("${CURL[@]}" -o "$WORK/r8.html" -w '%{http_code}' -H 'Content-Type: application/json' \
  -H 'Content-Encoding: br' --data-binary "@$WORK/records.json.br" \
  "https://uploads.example-unknown.test:$TARGET_PORT/api/records-br" || true)
if [ "$code" = 403 ] && grep -q 'sensitive_content' "$WORK/r8.html"; then pass "brotli JSON with My Numbers blocked"; else fail "brotli JSON with My Numbers: got $code"; fi
want=$(sha256sum "$WORK/clean.json.br" | cut -d' ' -f1)
code=$("${CURL[@]}" -o "$WORK/r8.json" -w '%{http_code}' -H 'Content-Type: application/json' \
  -H 'Content-Encoding: br' --data-binary "@$WORK/clean.json.br" \
  "https://uploads.example-unknown.test:$TARGET_PORT/api/items-br" || true)
got=$(python3 -c "import json; print(json.load(open('$WORK/r8.json'))['sha256'])" 2>/dev/null || true)
if [ "$code" = 200 ] && [ "$got" = "$want" ]; then pass "clean brotli JSON passes byte-identical"; else fail "clean brotli JSON: $code"; fi
# An encoding mamori cannot decode is not inspected, so it is blocked.
code=$("${CURL[@]}" -o "$WORK/r8.html" -w '%{http_code}' -H 'Content-Type: application/json' \
  -H 'Content-Encoding: zstd' --data-binary '{"a":1}' \
  "https://uploads.example-unknown.test:$TARGET_PORT/api/zstd" || true)
if [ "$code" = 403 ] && grep -q 'inspection_failed' "$WORK/r8.html"; then pass "unknown Content-Encoding blocked (fail closed)"; else fail "zstd body: got $code"; fi

# 6. With mamori icap stopped, Squid refuses (bypass=off): HTTP 500
# ERR_ICAP_FAILURE, or a reset for a large body; nothing reaches the target.
kill "$ICAP_PID"; wait "$ICAP_PID" 2>/dev/null || true
before=$(wc -l < "$WORK/target.jsonl")
code=$("${CURL[@]}" -D "$WORK/r6.head" -o "$WORK/r6.html" -w '%{http_code}' -H 'Content-Type: text/plain' \
  --data-binary 'hello' "https://uploads.example-unknown.test:$TARGET_PORT/when-down" 2>/dev/null || true)
code_big=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -H 'Content-Type: application/octet-stream' \
  --data-binary "@$WORK/clean.bin" "https://uploads.example-unknown.test:$TARGET_PORT/when-down-big" 2>/dev/null || true)
after=$(wc -l < "$WORK/target.jsonl")
if [ "$code" = 500 ] && grep -qi 'X-Squid-Error: ERR_ICAP_FAILURE' "$WORK/r6.head" && [ "$code_big" != 200 ] && [ "$before" = "$after" ]; then
  pass "icap down: Squid refused (500 ERR_ICAP_FAILURE; 1 MiB upload: $code_big), nothing reached the target"
else
  fail "icap down: got $code / $code_big, target lines $before -> $after"; cat "$WORK/r6.head" || true
fi

echo "egress integration: $PASSED passed, $FAILED failed"
if [ "$FAILED" -ne 0 ]; then
  echo "--- icap.log"; tail -20 "$WORK/icap.log" || true
  echo "--- cache.log"; tail -20 "$WORK/cache.log" || true
  exit 1
fi
