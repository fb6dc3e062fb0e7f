#!/usr/bin/env bash
# Real integration test: curl -> Squid (ssl_bump) -> mamori icap -> HTTPS target,
# all on 127.0.0.1. Needs root (Squid drops to user proxy) and squid-openssl.
# Usage: squid_integration.sh MAMORI_BINARY SOURCE_DIR
set -euo pipefail
MAMORI=$1
SRC=$2
SQUID=${SQUID:-/usr/sbin/squid}
CERTGEN=/usr/lib/squid/security_file_certgen

fail() { echo "FAIL: $*"; FAILED=$((FAILED + 1)); }
pass() { echo "ok: $*"; PASSED=$((PASSED + 1)); }
PASSED=0
FAILED=0

[ -x "$SQUID" ] && [ -x "$CERTGEN" ] || { echo "squid-openssl is not installed (scripts/deps/egress.txt)"; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "this test must run as root (Squid runs as user proxy)"; exit 1; }

WORK=$(mktemp -d /tmp/mamori-egress-it.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -f "$WORK/squid.pid" ]; then kill "$(cat "$WORK/squid.pid")" 2>/dev/null || true; fi
  sleep 0.3
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  if [ -f "$WORK/squid.pid" ]; then kill -9 "$(cat "$WORK/squid.pid")" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; else echo "kept $WORK"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 100); do
    if python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1',$1)))" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "port $1 did not open"; return 1
}

SQUID_PORT=$(free_port)
ICAP_PORT=$(free_port)
TARGET_PORT=$(free_port)
HOOK_PORT=$(free_port)

# --- CA for ssl_bump, and a certificate for the target -----------------------
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mamori test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=target" \
  -addext "subjectAltName=DNS:gigafile.nu,DNS:*.gigafile.nu,DNS:*.corp-approved.test,DNS:*.example-unknown.test,DNS:*.transfer-unknown.test" \
  -keyout "$WORK/target.key" -out "$WORK/target.pem" 2>/dev/null
"$CERTGEN" -c -s "$WORK/ssl_db" -M 16MB >/dev/null
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
    --webhook "http://127.0.0.1:$HOOK_PORT/alert" --no-syslog 2>>"$WORK/icap.log" &
  ICAP_PID=$!
  PIDS+=($ICAP_PID)
  wait_port "$ICAP_PORT"
}
start_icap

# --- Squid ------------------------------------------------------------------------
cat > "$WORK/squid.conf" <<CONF
http_port 127.0.0.1:$SQUID_PORT ssl-bump tls-cert=$WORK/ca.pem tls-key=$WORK/ca.key generate-host-certificates=on dynamic_cert_mem_cache_size=4MB
sslcrtd_program $CERTGEN -s $WORK/ssl_db -M 16MB
sslcrtd_children 2 startup=1 idle=1
acl step1 at_step SslBump1
ssl_bump peek step1
ssl_bump bump all
tls_outgoing_options cafile=$WORK/target.pem
hosts_file $WORK/hosts
acl localnet src 127.0.0.1/32
http_access allow localnet
http_access deny all
icap_enable on
icap_send_client_ip on
icap_send_client_username on
icap_preview_enable on
icap_persistent_connections on
icap_service_failure_limit -1
icap_service mamori_req reqmod_precache icap://127.0.0.1:$ICAP_PORT/reqmod bypass=off
adaptation_access mamori_req allow all
client_request_buffer_max_size 4 MB
cache deny all
cache_mem 8 MB
pid_filename $WORK/squid.pid
access_log stdio:$WORK/access.log
cache_log $WORK/cache.log
cache_store_log none
coredump_dir $WORK
cache_effective_user proxy
visible_hostname mamori-test
pinger_enable off
shutdown_lifetime 1 seconds
dns_v4_first on
CONF
sed -i '/^dns_v4_first/d' "$WORK/squid.conf"
chown -R proxy:proxy "$WORK"
"$SQUID" -N -f "$WORK/squid.conf" 2>>"$WORK/squid.stderr" & PIDS+=($!)
wait_port "$SQUID_PORT" || { cat "$WORK/cache.log" "$WORK/squid.stderr"; exit 1; }

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
PY
truncate -s 50MB "$WORK/chunk.bin"  # 50,000,000 bytes, like a GigaFile chunk
chmod 644 "$WORK"/*.csv "$WORK"/*.bin

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

# 5. Ten 50 MB chunks to one destination: summed, blocked past the 200 MB cap.
ok=0; blocked=0
for i in $(seq 1 10); do
  code=$("${CURL[@]}" -o "$WORK/r5.out" -w '%{http_code}' -H 'Content-Type: application/octet-stream' \
    --data-binary "@$WORK/chunk.bin" "https://bigfiles.transfer-unknown.test:$TARGET_PORT/upload_chunk.php?chunk=$i" 2>/dev/null || true)
  if [ "$code" = 200 ]; then ok=$((ok + 1)); elif [ "$code" = 403 ] || [ "$code" = 000 ]; then blocked=$((blocked + 1)); fi
done
caps=$(grep -c '"volume_cap"' "$WORK/audit.jsonl" || true)
reached=$(grep -c 'upload_chunk.php?chunk=' "$WORK/target.jsonl" || true)
if [ "$ok" = 4 ] && [ "$blocked" = 6 ] && [ "$caps" = 6 ] && [ "$reached" = 4 ]; then
  pass "10 x 50 MB chunks: 4 passed, 6 blocked by the cumulative cap"
else
  fail "chunked uploads: ok=$ok blocked=$blocked audited caps=$caps reached target=$reached"
fi
sleep 1
if grep -q '"volume_cap"' "$WORK/alerts.jsonl" 2>/dev/null; then pass "cap alert delivered to the webhook"; else fail "no webhook alert for the cap"; fi

# 6. With mamori icap stopped, Squid refuses (bypass=off).
kill "$ICAP_PID"; wait "$ICAP_PID" 2>/dev/null || true
before=$(wc -l < "$WORK/target.jsonl")
code=$("${CURL[@]}" -o "$WORK/r6.html" -w '%{http_code}' -H 'Content-Type: text/plain' \
  --data-binary 'hello' "https://uploads.example-unknown.test:$TARGET_PORT/when-down" 2>/dev/null || true)
after=$(wc -l < "$WORK/target.jsonl")
if [ "$code" != 200 ] && [ "$before" = "$after" ]; then pass "icap down: Squid refused ($code), nothing reached the target"; else fail "icap down: got $code, target lines $before -> $after"; fi

echo "egress integration: $PASSED passed, $FAILED failed"
if [ "$FAILED" -ne 0 ]; then
  echo "--- icap.log"; tail -20 "$WORK/icap.log" || true
  echo "--- cache.log"; tail -20 "$WORK/cache.log" || true
  exit 1
fi
