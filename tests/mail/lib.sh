# Shared helpers for the mail integration test and benchmark: private Postfix
# instances on loopback, beside (never touching) the system instance.
# Source it; it expects $W (a work directory the postfix user can traverse).

# For the integration tests: exits 77 (ctest's SKIP) unless this machine can
# run private Postfix instances; then makes the work directory $W (PREFIX).
mail_test_setup() {
  if [ "$(id -u)" -ne 0 ] || ! command -v postfix >/dev/null || ! command -v swaks >/dev/null \
     || [ ! -x /usr/sbin/smtp-sink ]; then
    echo "SKIP: needs root, postfix, swaks and smtp-sink (scripts/deps/mail.txt)"
    exit 77
  fi
  W=$(mktemp -d "/tmp/$1.XXXXXX")
  chmod 755 "$W"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# make_postfix NAME SMTPD_PORT "extra main.cf lines"
make_postfix() {
  local name=$1 port=$2 extra=$3
  local d=$W/$name
  mkdir -p "$d/etc" "$d/queue" "$d/data"
  chown postfix "$d/data"
  cat >"$d/etc/main.cf" <<EOMAIN
compatibility_level = 3.6
queue_directory = $d/queue
data_directory = $d/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mamori-$name.localdomain
mydomain = localdomain
myorigin = \$myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
alias_maps =
alias_database =
local_recipient_maps =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
smtp_tls_security_level = none
smtpd_tls_security_level = none
smtputf8_enable = no
maillog_file = $d/maillog
maillog_file_prefixes = $W
biff = no
append_dot_mydomain = no
default_process_limit = 50
smtpd_client_connection_count_limit = 0
smtpd_client_message_rate_limit = 0
anvil_rate_time_unit = 60s
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
smtp_connection_cache_on_demand = yes
$extra
EOMAIN
  cat >"$d/etc/master.cf" <<EOMASTER
127.0.0.1:$port inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOMASTER
  postfix -c "$d/etc" start >"$d/start.log" 2>&1 || { cat "$d/start.log" >&2; return 1; }
}

stop_postfix() {
  local d=$W/$1
  [ -d "$d/etc" ] && postfix -c "$d/etc" stop >/dev/null 2>&1 || true
}

# wait_until TIMEOUT_SECONDS COMMAND...: polls until COMMAND succeeds.
wait_until() {
  local t=$1; shift
  local end=$((SECONDS + t))
  until "$@"; do
    [ $SECONDS -ge $end ] && return 1
    sleep 0.2
  done
}

# Waits until the TCP port accepts connections.
port_open() { python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.5); sys.exit(s.connect_ex(('127.0.0.1',$1)))"; }

# Starts smtp-sink (every delivered message a file under $W/sink), the test's
# own start_milter, the Postfix under test ("mta": the milter, fail closed,
# relaying to the sink) and a sending Postfix in front of it ("front").
# Needs W, SINK_PORT, MTA_PORT, FRONT_PORT, MILTER_PORT; sets SINK_PID.
start_mta_pair() {
  local connect_timeout=$1
  /usr/sbin/smtp-sink -u nobody -d "$W/sink/%M." "127.0.0.1:$SINK_PORT" 100 &
  SINK_PID=$!
  start_milter
  make_postfix mta "$MTA_PORT" "relayhost = [127.0.0.1]:$SINK_PORT
smtpd_milters = inet:127.0.0.1:$MILTER_PORT
milter_default_action = tempfail
milter_protocol = 6
milter_connect_timeout = $connect_timeout" || return 1
  make_postfix front "$FRONT_PORT" "relayhost = [127.0.0.1]:$MTA_PORT" || return 1
  wait_until 20 port_open "$MTA_PORT" || { echo "postfix did not start"; return 1; }
  wait_until 20 port_open "$FRONT_PORT" || { echo "front postfix did not start"; return 1; }
}
