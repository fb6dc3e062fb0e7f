# Shared Squid (squid-openssl, ssl_bump) setup for tests/egress/squid_integration.sh
# and bench/icap_vs_squid.sh. Source it after setting WORK (a directory that
# Squid's user `proxy` can read). Facts behind the settings:
# ../shared/reference/egress.md §9 and docs/egress.md.
SQUID=${SQUID:-/usr/sbin/squid}
CERTGEN=${CERTGEN:-/usr/lib/squid/security_file_certgen}

# Fails with a message saying what to install or how to run.
squid_require() {
  if [ ! -x "$SQUID" ] || [ ! -x "$CERTGEN" ]; then
    echo "squid-openssl is not installed (apt-get install squid-openssl; scripts/deps/egress.txt)"
    return 1
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "must run as root (Squid drops to user proxy)"
    return 1
  fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() {
  for _ in $(seq 1 100); do
    if python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1',$1)))" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "port $1 did not open"
  return 1
}

# squid_make_certs SANS: the ssl_bump CA ($WORK/ca.pem, ca.key), a target
# certificate for SANS ("DNS:a.test,DNS:*.b.test") in $WORK/target.pem/.key,
# and the database of minted certificates ($WORK/ssl_db).
squid_make_certs() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mamori test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=target" \
    -addext "subjectAltName=$1" -keyout "$WORK/target.key" -out "$WORK/target.pem" 2>/dev/null
  "$CERTGEN" -c -s "$WORK/ssl_db" -M 16MB >/dev/null
}

# squid_write_conf DIR PORT [ICAP_URL]: DIR/squid.conf for a Squid on
# 127.0.0.1:PORT that bumps every TLS connection, resolves names with
# $WORK/hosts, trusts $WORK/target.pem upstream and keeps its state in DIR.
# With ICAP_URL, REQMOD goes to it as an essential service (bypass=off).
# SQUID_ACCESS_LOG (default none) and SQUID_EXTRA (more directives) adjust it.
squid_write_conf() {
  local dir=$1 port=$2 url=${3:-}
  mkdir -p "$dir"
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
      echo "icap_send_client_username on"
      echo "icap_preview_enable on"
      echo "icap_persistent_connections on"
      # Tests stop and restart the service; never suspend it.
      echo "icap_service_failure_limit -1"
      echo "icap_service mamori_req reqmod_precache $url bypass=off"
      echo "adaptation_access mamori_req allow all"
    fi
    # Squid 5.7 drops large fast uploads with the default 512 KB.
    echo "client_request_buffer_max_size 4 MB"
    echo "cache deny all"
    echo "cache_mem 8 MB"
    echo "pid_filename $dir/squid.pid"
    echo "access_log ${SQUID_ACCESS_LOG:-none}"
    echo "cache_log $dir/cache.log"
    echo "cache_store_log none"
    echo "coredump_dir $dir"
    echo "cache_effective_user proxy"
    echo "visible_hostname mamori-test"
    echo "pinger_enable off"
    echo "shutdown_lifetime 1 seconds"
    if [ -n "${SQUID_EXTRA:-}" ]; then printf '%s\n' "$SQUID_EXTRA"; fi
  } > "$dir/squid.conf"
  chown -R proxy:proxy "$dir"
}

# squid_start DIR PORT: runs Squid on DIR/squid.conf in the background, waits
# for its port and appends its pid to $WORK/squid.pids (for cleanup).
squid_start() {
  "$SQUID" -N -f "$1/squid.conf" >>"$1/squid.stderr" 2>&1 &
  echo $! >> "$WORK/squid.pids"
  wait_port "$2" >&2 || { cat "$1/cache.log" "$1/squid.stderr" >&2 2>/dev/null; return 1; }
}

# squid_stop_all: TERM, then KILL after 6 s, every Squid started here.
squid_stop_all() {
  [ -f "$WORK/squid.pids" ] || return 0
  local pids
  pids=$(cat "$WORK/squid.pids")
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 1 30); do
    local alive=0
    for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && return 0
    sleep 0.2
  done
  for p in $pids; do kill -9 "$p" 2>/dev/null || true; done
}
