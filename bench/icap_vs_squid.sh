#!/usr/bin/env bash
# Benchmark: uploads through Squid (ssl_bump) alone, Squid + c-icap echo, and
# Squid + mamori icap (inspecting), in one run, on 127.0.0.1, with a realistic
# upload mix, each part reported on its own:
#   prose  documents (multipart file uploads of Japanese/English prose)
#   csv    order exports with sparse personal data (a few names and phone
#          numbers, below the policy's thresholds, so they pass inspection)
#   form   small urlencoded form posts (~1 KB): requests/s and p50/p99 latency
# Prints throughput ratios against Squid alone (goal >= 0.8) and the latency
# mamori adds to small requests.
# Usage: bench/icap_vs_squid.sh [BUILD_DIR]   (root; squid-openssl and c-icap)
# Env: DOCS (uploads per document kind, default 20), DOC_MB (size, default 8),
#      FORMS (default 1000), PARALLEL (default 4), CAPS (1, default: the policy
#      has a volume cap, so every upload is also synced to the cap journal;
#      0: no cap, to see what the journal costs), MAMORI_THREADS (default 2),
#      ROUNDS (default 5; each column's median run is reported), MIXES (default
#      "prose csv form"; a subset reports only those mixes).
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MAMORI=$BUILD/src/cli/mamori
[ -x "$MAMORI" ] || MAMORI=$(find "$BUILD" -name mamori -type f -perm -u+x | head -1)
DOCS=${DOCS:-20}
DOC_MB=${DOC_MB:-8}
FORMS=${FORMS:-1000}
PARALLEL=${PARALLEL:-4}
CAPS=${CAPS:-1}
if [ "$DOCS" -lt "$PARALLEL" ] || [ "$FORMS" -lt "$PARALLEL" ]; then
  echo "DOCS ($DOCS) and FORMS ($FORMS) must be at least PARALLEL ($PARALLEL)"; exit 2
fi
WORK=$(mktemp -d /tmp/mamori-icap-bench.XXXXXX)
chmod 755 "$WORK"
. "$ROOT/tests/egress/squid_lib.sh"
squid_require || exit 2
[ -x /usr/bin/c-icap ] || { echo "needs c-icap (apt-get install c-icap)"; exit 2; }

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  squid_stop_all
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

TARGET_PORT=$(free_port)
MAMORI_PORT=$(free_port)
CICAP_PORT=$(free_port)
squid_make_certs "DNS:upload.bench-unknown.test"
echo "127.0.0.1 upload.bench-unknown.test" > "$WORK/hosts"

# Target: reads and discards bodies, answers 200 (threads; keep-alive).
cat > "$WORK/target.py" <<'PY'
import socket, ssl, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms delayed-ACK stalls
    def do_POST(self):
        left = int(self.headers.get("Content-Length", "0"))
        while left > 0:
            d = self.rfile.read(min(left, 1 << 20))
            if not d: break
            left -= len(d)
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
s = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); c.load_cert_chain(sys.argv[2], sys.argv[3])
s.socket = c.wrap_socket(s.socket, server_side=True)
s.serve_forever()
PY
python3 "$WORK/target.py" "$TARGET_PORT" "$WORK/target.pem" "$WORK/target.key" & PIDS+=($!)

# mamori icap: the shipped lists; the upload host is "unknown" -> inspected,
# with the shipped content thresholds and a cap high enough not to fire.
mkdir -p "$WORK/policy"
cp "$ROOT/rules/egress/destinations.yaml" "$WORK/policy/"
cat > "$WORK/policy/policy.yaml" <<'POL'
settings: {preview_bytes: 4096, spool_memory_bytes: 32MiB, spool_max_bytes: 1GiB}
categories:
  approved: {uploads: allow}
  personal_storage: {uploads: block}
  webmail: {uploads: inspect}
  unknown: {uploads: inspect, content: {block_types: [jp.my_number], max_individuals: 50}}
POL
if [ "$CAPS" = 1 ]; then
  printf 'caps:\n  - {name: hourly, per: user_destination, window: 1h, max_bytes: 1000GB, categories: [unknown]}\n' \
    >> "$WORK/policy/policy.yaml"
fi
# As deployed: the shared audit log (group commit) and the cap journal, both
# synced before an upload is let go.
"$MAMORI" audit keygen --out "$WORK/keys" >/dev/null
"$MAMORI" icap --listen "127.0.0.1:$MAMORI_PORT" --policy "$WORK/policy" --threads "${MAMORI_THREADS:-2}" \
  --audit-log "$WORK/audit.log" --audit-key "$WORK/keys/audit_signing.key" \
  --hash-key "$WORK/hash.key" --spool-dir "$WORK" \
  --cap-journal "$WORK/caps.journal" --no-syslog 2>"$WORK/mamori.log" & PIDS+=($!)

# c-icap echo.
cat > "$WORK/c-icap.conf" <<CONF
PidFile $WORK/c-icap.pid
CommandsSocket $WORK/c-icap.ctl
Timeout 300
MaxKeepAliveRequests 0
KeepAliveTimeout 600
StartServers 1
MaxServers 2
MinSpareThreads 10
MaxSpareThreads 20
ThreadsPerChild 20
Port 127.0.0.1:$CICAP_PORT
User proxy
Group proxy
TmpDir $WORK
MaxMemObject 131072
DebugLevel 0
Pipelining on
ModulesDir /usr/lib/x86_64-linux-gnu/c_icap
ServicesDir /usr/lib/x86_64-linux-gnu/c_icap
TemplateDir /usr/share/c_icap/templates/
ServerLog $WORK/c-icap-server.log
AccessLog /dev/null
Service echo srv_echo.so
CONF
chown -R proxy:proxy "$WORK"
/usr/bin/c-icap -f "$WORK/c-icap.conf" -N & PIDS+=($!)
wait_port "$TARGET_PORT"; wait_port "$MAMORI_PORT"; wait_port "$CICAP_PORT"

declare -A PORT
for name in alone cicap mamori; do PORT[$name]=$(free_port); done
squid_write_conf "$WORK/alone" "${PORT[alone]}"
squid_write_conf "$WORK/cicap" "${PORT[cicap]}" "icap://127.0.0.1:$CICAP_PORT/echo"
squid_write_conf "$WORK/mamori" "${PORT[mamori]}" "icap://127.0.0.1:$MAMORI_PORT/reqmod"
for name in alone cicap mamori; do squid_start "$WORK/$name" "${PORT[$name]}"; done

# Load generator: persistent CONNECT tunnels, PARALLEL threads. Bodies are
# built once per mix (seeded), so every configuration sends the same bytes.
cat > "$WORK/load.py" <<'PY'
import http.client, random, ssl, sys, threading, time, urllib.parse
proxy_port, ca, mix, count, par, target_port, doc_mb = (int(sys.argv[1]), sys.argv[2], sys.argv[3],
    int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]))
r = random.Random(42)
JA = ["本四半期の売上は前年同期比で増加しました。", "新しい事務所のレイアウト案を添付します。",
      "来週の会議では採用計画について議論します。", "品質管理の手順を見直す必要があります。",
      "取引先との契約条件は従来どおりです。", "研修資料は共有フォルダに保存してください。"]
EN = ["The quarterly review covers sales, hiring plans and the new office layout.",
      "Please review the attached draft before Friday's meeting.",
      "Shipping volumes rose in October, mostly from the western region.",
      "The migration plan keeps the old system running until March."]
def multipart(name, ctype, data):
    b = "----mamoribench%08x" % r.getrandbits(32)
    head = (f"--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: {ctype}\r\n\r\n").encode()
    return head + data + f"\r\n--{b}--\r\n".encode(), f"multipart/form-data; boundary={b}"
size = doc_mb * 1_000_000
if mix == "prose":
    parts, n = [], 0
    while n < size:
        para = "".join(r.choice(JA) for _ in range(6)) + "\n" + " ".join(r.choice(EN) for _ in range(3)) + "\n\n"
        parts.append(para); n += len(para.encode())
    body, ctype = multipart("report.txt", "text/plain", "".join(parts).encode()[:size])
elif mix == "csv":
    # Order lines; 20 rows anywhere in the file carry a customer name and phone.
    rows, n, people = ["order_id,date,product,qty,unit_price,customer,phone"], 0, set()
    total = size // 60
    contacts = set(r.sample(range(1, total), 20))
    for i in range(1, total):
        who = f"顧客{i % 97},090-{r.randint(1000, 9999)}-{r.randint(1000, 9999)}" if i in contacts else ","
        rows.append(f"A{100000 + i},2026-10-{1 + i % 28:02d},部品{r.randint(1, 500)},{r.randint(1, 40)},{r.randint(100, 99999)},{who}")
    body, ctype = multipart("orders.csv", "text/csv", ("\n".join(rows) + "\n").encode())
else:  # form: a small urlencoded post, like a web form or comment box
    fields = {"subject": "会議室の予約", "body": " ".join(r.choice(JA) for _ in range(12)),
              "room": "3F-A", "date": "2026-12-01", "token": "%032x" % r.getrandbits(128)}
    body, ctype = urllib.parse.urlencode(fields).encode(), "application/x-www-form-urlencoded"
ctx = ssl.create_default_context(cafile=ca)
lat, errors, lock = [], [0], threading.Lock()
def worker(n):
    conn = None
    for _ in range(n):
        try:
            if conn is None:
                conn = http.client.HTTPSConnection("127.0.0.1", proxy_port, context=ctx, timeout=120)
                conn.set_tunnel("upload.bench-unknown.test", target_port)
            t = time.perf_counter()
            conn.request("POST", "/upload", body=body, headers={"Content-Type": ctype})
            resp = conn.getresponse(); resp.read()
            dt = time.perf_counter() - t
            if resp.status != 200: raise RuntimeError(resp.status)
            with lock: lat.append(dt)
        except Exception:
            with lock: errors[0] += 1
            conn = None
worker(2)  # warm up (certificate minting, connections)
lat.clear(); errors[0] = 0
threads = [threading.Thread(target=worker, args=(count // par,)) for _ in range(par)]
t0 = time.perf_counter()
for t in threads: t.start()
for t in threads: t.join()
wall = time.perf_counter() - t0
lat.sort()
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")
print(f"{len(lat)} {errors[0]} {wall:.3f} {len(lat) * len(body) / wall / 1e6:.1f} {len(lat) / wall:.1f} {p(0.5):.2f} {p(0.99):.2f} {len(body)}")
PY

echo "icap_vs_squid: caps $CAPS; $DOCS x ${DOC_MB} MB prose, $DOCS x ${DOC_MB} MB CSV, $FORMS form posts; $PARALLEL in parallel; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
# ROUNDS rounds (default 5); in each, every mix runs its three columns back to
# back (so load drifts alike), in an order rotated every round. A single run
# lasts well under a second, so one round alone swung a ratio by +-0.15; each
# column's reported row is its median run.
ROUNDS=${ROUNDS:-5}
names=(alone cicap mamori)
declare -A RES
for r in $(seq 0 $((ROUNDS - 1))); do
  for mix in ${MIXES:-prose csv form}; do
    count=$DOCS; [ "$mix" = form ] && count=$FORMS
    for k in 0 1 2; do
      name=${names[$(((k + r) % 3))]}
      RES[$mix.$name]+="$(python3 "$WORK/load.py" "${PORT[$name]}" "$WORK/ca.pem" "$mix" "$count" "$PARALLEL" "$TARGET_PORT" "$DOC_MB")|"
    done
  done
done
python3 - "${RES[prose.alone]:-}" "${RES[prose.cicap]:-}" "${RES[prose.mamori]:-}" \
  "${RES[csv.alone]:-}" "${RES[csv.cicap]:-}" "${RES[csv.mamori]:-}" \
  "${RES[form.alone]:-}" "${RES[form.cicap]:-}" "${RES[form.mamori]:-}" <<'PY'
import sys
names = ["squid alone", "squid + c-icap echo", "squid + mamori icap"]
mixes = [("prose documents", 0, 3, "MB/s"), ("CSV, sparse personal data", 3, 3, "MB/s"), ("form posts", 6, 4, "req/s")]
runs = [[list(map(float, r.split())) for r in a.split("|") if r.strip()] for a in sys.argv[1:]]
mixes = [m for m in mixes if runs[m[1]]]  # MIXES may select a subset
v = [None] * len(runs)
for i, rs in enumerate(runs):
    if not rs: continue
    col = 4 if i >= 6 else 3
    rs.sort(key=lambda row: row[col])
    v[i] = rs[len(rs) // 2]  # the median run by rate
for label, base, col, unit in mixes:
    print(f"per-round {unit}, {label}: " + " | ".join(
        n + " " + " ".join(f"{row[col]:.0f}" for row in sorted(runs[base + i], key=lambda row: row[col]))
        for i, n in enumerate(["alone", "c-icap", "mamori"])))
print(f"medians of {len(runs[mixes[0][1]])} rounds:")
print(f"{'':28} {'':22} {'rate':>9} {'ratio':>6} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
for label, base, col, unit in mixes:
    size = int(v[base][7])
    for i, n in enumerate(names):
        row = v[base + i]
        print(f"{label + f' ({size} B)' if i == 0 else '':28} {n:22} {row[col]:9.1f} {row[col] / v[base][col]:6.2f} {row[5]:8.2f} {row[6]:8.2f} {int(row[1]):6d}  {unit}")
if v[6]:
    f = v[6:9]
    print(f"added latency, form posts: c-icap p50 +{f[1][5]-f[0][5]:.2f} ms p99 +{f[1][6]-f[0][6]:.2f} ms; "
          f"mamori p50 +{f[2][5]-f[0][5]:.2f} ms p99 +{f[2][6]-f[0][6]:.2f} ms")
for label, base, col, unit in mixes:
    print(f"RATIO {label}: mamori/squid = {v[base+2][col]/v[base][col]:.2f} (goal >= 0.8); c-icap/squid = {v[base+1][col]/v[base][col]:.2f}")
v = [x for x in v if x]
errs = sum(int(x[1]) for x in v)
if errs: print(f"WARNING: {errs} requests failed (a block by mamori counts as a failure; see the audit log)")
PY
"$MAMORI" audit export --log "$WORK/audit.log" > "$WORK/audit.jsonl"
python3 - "$WORK/audit.jsonl" <<'PY'
import collections, json, sys
c = collections.Counter()
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["component"] != "egress": continue
    c[(r["result"], r["reason"], r["extra"].get("detail", "")[:120])] += 1
print("mamori audit:", ", ".join(f"{n} x {k[0]}/{k[1]}" + (f" ({k[2]})" if k[0] != "allow" else "") for k, n in c.most_common()))
PY
