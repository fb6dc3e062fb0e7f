#!/usr/bin/env bash
# Benchmark: the vault against nginx on loopback, in one run (issue 4).
#   1. download of a BENCH_MB file (default 1024): vault (mTLS, decrypt, audit) vs
#      nginx serving the same plaintext over TLS 1.3; goal vault >= 0.5x nginx
#   2. upload MB/s into the vault (encrypt, SHA-256, detection scan, fsync)
#   3. the authenticated list API at 64 connections for 10 s: req/s and p99
#      (goal p99 < 20 ms; every request audited)
# Usage: bench/serve_vs_nginx.sh [BUILD_DIR]   (needs nginx, curl, oathtool)
#   VAULT_BASELINE=/path/to/older/mamori also measures that binary's download and
#   list API on the same data, right after this build's, so a change is compared
#   back to back on a shared (noisy) machine.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
M=$BUILD/src/cli/mamori
VB=$BUILD/bench/vault_bench
MB=${BENCH_MB:-1024}
W=$(mktemp -d /tmp/mamori-bench.XXXXXX)
VPORT=${VPORT:-18543}
NPORT=${NPORT:-18544}
cleanup() {
  [ -f "$W/vault.pid" ] && kill "$(cat "$W/vault.pid")" 2>/dev/null || true
  [ -f "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid")" 2>/dev/null || true
  sleep 0.5
  rm -rf "$W"
}
trap cleanup EXIT

"$M" serve --init --data "$W/data" --keys "$W/keys" >"$W/init.out"
TOKEN=$(sed -n 's/^    \([A-Za-z0-9_-]\{20,\}\)$/\1/p' "$W/init.out")
CA=$W/data/pki/ca.crt
start_vault() {
  "$1" serve --data "$W/data" --keys "$W/keys" --listen 127.0.0.1:$VPORT ${VAULT_FLAGS:-} \
    >"$W/vault.out" 2>&1 &
  echo $! >"$W/vault.pid"
  for i in $(seq 1 600); do
    curl -sf --cacert "$CA" https://127.0.0.1:$VPORT/v1/health >/dev/null && return 0
    if [ "$i" = 600 ]; then echo "vault did not start:"; cat "$W/vault.out"; exit 2; fi
    sleep 0.1
  done
}
stop_vault() {
  kill "$(cat "$W/vault.pid")"
  while kill -0 "$(cat "$W/vault.pid")" 2>/dev/null; do sleep 0.1; done
  rm -f "$W/vault.pid"
}
start_vault "$M"
PW="$W/pw"; printf 'Kumo-7tsuki&Hoshi9\n' >"$PW"
totp() { oathtool --totp -b "$(grep -o 'secret=[A-Z0-9]*' "$1" | cut -d= -f2)"; }
export MAMORI_PROFILE=$W/admin
"$M" enroll --server https://127.0.0.1:$VPORT --ca "$CA" --user admin --token "$TOKEN" \
  --password-file "$PW" >"$W/admin.enroll"
"$M" login --password-file "$PW" --totp "$(totp "$W/admin.enroll")" >/dev/null
UTOKEN=$("$M" admin users add bench | sed -n 's/.*"enrol_token": "\(.*\)".*/\1/p')
"$M" admin groups add bench >/dev/null
"$M" admin groups member bench bench >/dev/null
"$M" admin folders add benchfolder >/dev/null
"$M" admin folders acl 1 bench rw >/dev/null
export MAMORI_PROFILE=$W/user
"$M" enroll --server https://127.0.0.1:$VPORT --ca "$CA" --user bench --token "$UTOKEN" \
  --password-file "$PW" >"$W/user.enroll"
"$M" login --password-file "$PW" --totp "$(totp "$W/user.enroll")" >/dev/null
"$M" pledge --accept 2026-1 >/dev/null

mkdir -p "$W/www"
head -c "${MB}M" /dev/urandom >"$W/www/big.bin"
# nginx workers run unprivileged: let them traverse to the (random, non-personal) file.
chmod 711 "$W"; chmod 755 "$W/www"; chmod 644 "$W/www/big.bin"

# nginx over TLS on loopback, same server certificate.
cat >"$W/nginx.conf" <<NGINX
worker_processes 1;
pid $W/nginx.pid;
error_log $W/nginx.err;
events { worker_connections 256; }
http {
  access_log off;
  sendfile on;
  server {
    listen 127.0.0.1:$NPORT ssl;
    ssl_certificate $W/data/pki/server.crt;
    ssl_certificate_key $W/data/pki/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    root $W/www;
  }
}
NGINX
nginx -c "$W/nginx.conf"
sleep 0.5

now() { date +%s.%N; }
t0=$(now)
"$M" put 1 "$W/www/big.bin" >/dev/null
t1=$(now)
UP=$(echo "$MB / ($t1 - $t0)" | bc -l)

SESSION=$(cat "$W/user/session")
vault_dl() {
  curl -sf --cacert "$CA" --cert "$W/user/device.crt" --key "$W/user/device.key" \
    -H "Authorization: Bearer $SESSION" -o /dev/null -w '%{time_total}' \
    "https://127.0.0.1:$VPORT/v1/folders/1/files/big.bin"
}
nginx_dl() {
  curl -sf --cacert "$CA" -o /dev/null -w '%{time_total}' "https://127.0.0.1:$NPORT/big.bin"
}
vault_dl >/dev/null; nginx_dl >/dev/null   # warm the page cache
# One download each was at the mercy of whatever else ran on the machine at that
# moment; take the fastest of DL_RUNS, vault and nginx alternating.
DL_RUNS=${DL_RUNS:-3}
min() { echo "if ($1 < $2) $1 else $2" | bc -l; }
TN=
measure() {  # $1: label
  local TV= VDL RATIO i t
  for i in $(seq 1 "$DL_RUNS"); do
    t=$(vault_dl); TV=${TV:+$(min "$TV" "$t")}; TV=${TV:-$t}
    t=$(nginx_dl); TN=${TN:+$(min "$TN" "$t")}; TN=${TN:-$t}
  done
  VDL=$(echo "$MB / $TV" | bc -l); NDL=$(echo "$MB / $TN" | bc -l)
  RATIO=$(echo "$VDL / $NDL" | bc -l)
  printf '%sdownload %d MiB (best of %d): vault %.0f MB/s, nginx %.0f MB/s, ratio %.2fx (goal >= 0.5x)\n' \
    "$1" "$MB" "$DL_RUNS" "$VDL" "$NDL" "$RATIO"
  if [ -x "$VB" ]; then
    printf '%s' "$1"
    "$VB" "$W/user" /v1/folders/1/files 64 10 || true
  else
    echo "list API: $VB not built (configure with -DMAMORI_BENCH=ON)"
  fi
}
measure ""
printf 'upload %d MiB into the vault: %.0f MB/s\n' "$MB" "$UP"
if [ -n "${VAULT_BASELINE:-}" ]; then
  stop_vault
  start_vault "$VAULT_BASELINE"
  vault_dl >/dev/null
  measure "baseline $VAULT_BASELINE: "
fi
