#!/usr/bin/env bash
# Benchmark: uploads through Squid (ssl_bump) alone, Squid + c-icap echo, and
# Squid + mamori icap, in one run, on 127.0.0.1. Prints throughput ratios for
# 20 MB uploads and the added latency (p50/p99) for 4 KB requests.
# Usage: bench/icap_vs_squid.sh [BUILD_DIR]   (root; squid-openssl and c-icap)
# Env: UPLOADS (default 40), SMALL (default 2000), PARALLEL (default 4),
#      PAYLOAD=log (digit-heavy log lines, default) or prose.
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MAMORI=$BUILD/src/cli/mamori
[ -x "$MAMORI" ] || MAMORI=$(find "$BUILD" -name mamori -type f -perm -u+x | head -1)
UPLOADS=${UPLOADS:-40}
SMALL=${SMALL:-2000}
PARALLEL=${PARALLEL:-4}
SQUID=/usr/sbin/squid
CERTGEN=/usr/lib/squid/security_file_certgen
[ -x "$SQUID" ] || { echo "needs squid-openssl"; exit 2; }
[ -x /usr/bin/c-icap ] || { echo "needs c-icap"; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "run as root"; exit 2; }

WORK=$(mktemp -d /tmp/mamori-icap-bench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  local all=("${PIDS[@]}")
  [ -f "$WORK/squid.pids" ] && all+=($(cat "$WORK/squid.pids"))
  for p in "${all[@]}"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 1 30); do
    alive=0
    for p in "${all[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.2
  done
  for p in "${all[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 100); do
    python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1',$1)))" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "port $1 did not open"; return 1
}

TARGET_PORT=$(free_port)
MAMORI_PORT=$(free_port)
CICAP_PORT=$(free_port)
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=bench CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=target" \
  -addext "subjectAltName=DNS:upload.bench-unknown.test" \
  -keyout "$WORK/target.key" -out "$WORK/target.pem" 2>/dev/null
"$CERTGEN" -c -s "$WORK/ssl_db" -M 16MB >/dev/null
echo "127.0.0.1 upload.bench-unknown.test" > "$WORK/hosts"

# Target: reads and discards bodies, answers 200 (threads; keep-alive).
cat > "$WORK/target.py" <<'PY'
import ssl, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def setup(self):
        super().setup()
        import socket
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

# mamori icap: the shipped lists; the upload host is "unknown" -> inspected.
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
"$MAMORI" icap --listen "127.0.0.1:$MAMORI_PORT" --policy "$WORK/policy" --threads 2 \
  --audit-jsonl "$WORK/audit.jsonl" --hash-key "$WORK/hash.key" --spool-dir "$WORK" --no-syslog \
  2>"$WORK/mamori.log" & PIDS+=($!)

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

start_squid() {  # name, icap url or ""
  local name=$1 url=$2 port
  port=$(free_port)
  mkdir -p "$WORK/$name"
  {
    echo "http_port 127.0.0.1:$port ssl-bump tls-cert=$WORK/ca.pem tls-key=$WORK/ca.key generate-host-certificates=on dynamic_cert_mem_cache_size=4MB"
    echo "sslcrtd_program $CERTGEN -s $WORK/ssl_db -M 16MB"
    echo "sslcrtd_children 2 startup=1 idle=1"
    echo "acl step1 at_step SslBump1"
    echo "ssl_bump peek step1"
    echo "ssl_bump bump all"
    echo "tls_outgoing_options cafile=$WORK/target.pem"
    echo "hosts_file $WORK/hosts"
    echo "acl localnet src 127.0.0.1/32"
    echo "http_access allow localnet"
    echo "http_access deny all"
    if [ -n "$url" ]; then
      echo "icap_enable on"
      echo "icap_send_client_ip on"
      echo "icap_preview_enable on"
      echo "icap_persistent_connections on"
      echo "icap_service svc reqmod_precache $url bypass=off"
      echo "adaptation_access svc allow all"
    fi
    echo "client_request_buffer_max_size 4 MB"
    echo "cache deny all"
    echo "cache_mem 8 MB"
    echo "pid_filename $WORK/$name/squid.pid"
    echo "access_log none"
    echo "cache_log $WORK/$name/cache.log"
    echo "cache_store_log none"
    echo "coredump_dir $WORK/$name"
    echo "cache_effective_user proxy"
    echo "visible_hostname bench"
    echo "pinger_enable off"
    echo "shutdown_lifetime 1 seconds"
  } > "$WORK/$name/squid.conf"
  chown -R proxy:proxy "$WORK/$name"
  # Not in PIDS: this runs in $(...); cleanup kills Squids by their pid files.
  "$SQUID" -N -f "$WORK/$name/squid.conf" >/dev/null 2>&1 &
  echo $! >> "$WORK/squid.pids"
  wait_port "$port" >&2
  echo "$port"
}
P_ALONE=$(start_squid alone "")
P_CICAP=$(start_squid cicap "icap://127.0.0.1:$CICAP_PORT/echo")
P_MAMORI=$(start_squid mamori "icap://127.0.0.1:$MAMORI_PORT/reqmod")

# Load generator: persistent CONNECT tunnels, PARALLEL threads.
cat > "$WORK/load.py" <<'PY'
import http.client, os, ssl, statistics, sys, threading, time
proxy_port, ca, mode, count, par, target_port = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
size = 20_000_000 if mode == "big" else 4096
# Clean, text-like payload so the inspecting service does real work.
if os.environ.get("PAYLOAD", "log") == "prose":
    line = b"The quarterly review covers sales, hiring plans and the new office layout for the team.\n"
else:  # log lines: many digits (dates, times), the detectors' slow case
    line = b"2026-11-23 12:00:00 INFO request handled in 12 ms, status ok, items 42\n"
body = (line * (size // len(line) + 1))[:size]
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
            conn.request("POST", "/upload", body=body, headers={"Content-Type": "text/plain"})
            r = conn.getresponse(); r.read()
            dt = time.perf_counter() - t
            if r.status != 200: raise RuntimeError(r.status)
            with lock: lat.append(dt)
        except Exception as e:
            with lock: errors[0] += 1
            conn = None
# Warm up (certificate minting, connections).
worker(2)
lat.clear()
threads = [threading.Thread(target=worker, args=(count // par,)) for _ in range(par)]
t0 = time.perf_counter()
for t in threads: t.start()
for t in threads: t.join()
wall = time.perf_counter() - t0
lat.sort()
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")
print(f"{len(lat)} {errors[0]} {wall:.3f} {len(lat) * size / wall / 1e6:.1f} {len(lat) / wall:.1f} {p(0.5):.2f} {p(0.99):.2f}")
PY

run() {  # name port mode count -> "ok errors wall MB/s req/s p50 p99"
  python3 "$WORK/load.py" "$2" "$WORK/ca.pem" "$3" "$4" "$PARALLEL" "$TARGET_PORT"
}
echo "icap_vs_squid: payload ${PAYLOAD:-log}, $UPLOADS x 20 MB uploads and $SMALL x 4 KB requests, $PARALLEL in parallel, $(nproc) cores"
declare -A BIG SMALLR
for name in alone cicap mamori; do
  port_var=P_${name^^}; port=${!port_var}
  BIG[$name]=$(run "$name" "$port" big "$UPLOADS")
  SMALLR[$name]=$(run "$name" "$port" small "$SMALL")
  echo "  $name: big [${BIG[$name]}] small [${SMALLR[$name]}]"
done
python3 - "${BIG[alone]}" "${BIG[cicap]}" "${BIG[mamori]}" "${SMALLR[alone]}" "${SMALLR[cicap]}" "${SMALLR[mamori]}" <<'PY'
import sys
b = [list(map(float, a.split())) for a in sys.argv[1:4]]
s = [list(map(float, a.split())) for a in sys.argv[4:7]]
names = ["squid alone", "squid + c-icap echo", "squid + mamori icap"]
print(f"{'':24} {'20MB MB/s':>10} {'ratio':>6} {'4KB req/s':>10} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}")
for i, n in enumerate(names):
    print(f"{n:24} {b[i][3]:10.1f} {b[i][3]/b[0][3]:6.2f} {s[i][4]:10.1f} {s[i][4]/s[0][4]:6.2f} {s[i][5]:7.2f} {s[i][6]:7.2f} {int(b[i][1]+s[i][1]):6d}")
print(f"added latency (4 KB): c-icap p50 +{s[1][5]-s[0][5]:.2f} ms p99 +{s[1][6]-s[0][6]:.2f} ms; "
      f"mamori p50 +{s[2][5]-s[0][5]:.2f} ms p99 +{s[2][6]-s[0][6]:.2f} ms")
print(f"RATIO mamori/squid 20MB = {b[2][3]/b[0][3]:.2f} (goal >= 0.8); c-icap/squid = {b[1][3]/b[0][3]:.2f}")
PY
