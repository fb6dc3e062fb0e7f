#!/usr/bin/env bash
# Benchmark: Postfix throughput without a milter, with `mamori milter`, and with
# a no-op libmilter milter (the reference implementation), in one run.
# smtp-source -> private Postfix (loopback) -> smtp-sink. Prints messages/s
# and the ratio to plain Postfix (goal for mamori: >= 0.8). Needs root.
# PERF_DIR=DIR records a system-wide `perf record -a -g` of each timed run there.
# Usage: bench/milter_vs_postfix.sh [BUILD_DIR] [MESSAGES] [SESSIONS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
N=${2:-2000}
S=${3:-10}
MAMORI=$BUILD/src/cli/mamori
[ -x "$MAMORI" ] || { echo "build mamori first ($MAMORI)"; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "needs root (private Postfix instances)"; exit 2; }
command -v smtp-source >/dev/null || { echo "needs postfix (smtp-source)"; exit 2; }

W=$(mktemp -d /tmp/mamori-mail-bench.XXXXXX)
# ext4 without a journal (this machine's root file system) skips every inode
# deleted in the last 30 s when it creates a file, so a run right after
# another paid for the queue files the earlier one had deleted (the same column
# measured twice in a row slowed by a third, and plain Postfix, measured first,
# had the cleanest disk). Each run therefore starts PAUSE seconds (default 35)
# after the previous one. MAMORI_BENCH_FS=loop instead puts the queues on a
# fresh journaled ext4 image (no pause needed, but every fsync then goes
# through two file systems, which slows Postfix itself).
PAUSE=${PAUSE:-35}
FS_IMG=""
if [ "${MAMORI_BENCH_FS:-root}" = loop ]; then
  PAUSE=0
  FS_IMG=$W.img
  truncate -s 4G "$FS_IMG"
  mkfs.ext4 -q -F -O has_journal "$FS_IMG"
  mount -o loop "$FS_IMG" "$W" || { echo "cannot loop-mount a file system" >&2; rm -f "$FS_IMG"; exit 2; }
fi
chmod 755 "$W"
source "$ROOT/tests/mail/lib.sh"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for i in plain mamori mamori_noscan libmilter; do stop_postfix "$i"; done
  wait 2>/dev/null || true
  if [ -n "$FS_IMG" ]; then umount "$W" 2>/dev/null || umount -l "$W"; rm -f "$FS_IMG"; fi
  rm -rf "$W"
}
trap cleanup EXIT

# --- the no-op libmilter milter: every callback registered, each returns CONTINUE.
cat >"$W/noop.c" <<'EOC'
#include <libmilter/mfapi.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
static sfsistat cont_env(SMFICTX *c, char **a) { return SMFIS_CONTINUE; }
static sfsistat cont_hdr(SMFICTX *c, char *n, char *v) { return SMFIS_CONTINUE; }
static sfsistat cont_eoh(SMFICTX *c) { return SMFIS_CONTINUE; }
static sfsistat cont_body(SMFICTX *c, unsigned char *b, size_t l) { return SMFIS_CONTINUE; }
static sfsistat cont_eom(SMFICTX *c) { return SMFIS_CONTINUE; }
int main(int argc, char **argv) {
  struct smfiDesc d;
  memset(&d, 0, sizeof d);
  d.xxfi_name = "noop"; d.xxfi_version = SMFI_VERSION;
  d.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE;
  d.xxfi_envfrom = cont_env; d.xxfi_envrcpt = cont_env; d.xxfi_header = cont_hdr;
  d.xxfi_eoh = cont_eoh; d.xxfi_body = cont_body; d.xxfi_eom = cont_eom;
  if (smfi_setconn(argv[1]) == MI_FAILURE || smfi_register(d) == MI_FAILURE) return 1;
  if (smfi_opensocket(1) == MI_FAILURE) return 1;
  if (strncmp(argv[1], "unix:", 5) == 0) chmod(argv[1] + 5, 0666);
  return smfi_main() == MI_SUCCESS ? 0 : 1;
}
EOC
cc -O2 -o "$W/noop" "$W/noop.c" -lmilter -lpthread

# --- a realistic mix: 90% Japanese business text (~3.8 KB), 10% with a 200 KB attachment.
python3 - "$W" <<'EOPY'
import sys, random, base64
from email.message import EmailMessage
from email.policy import SMTP
w = sys.argv[1]
random.seed(1)
para = "いつもお世話になっております。来週の打ち合わせの件、資料を確認のうえ、ご連絡いたします。" \
       "納期とお見積りについては別途ご相談させてください。よろしくお願いいたします。\n"
def msg(attach):
    m = EmailMessage()
    m["From"] = "alice@corp.example.jp"; m["To"] = "taro@client.example"
    m["Subject"] = "お打ち合わせの件"
    m.set_content(para * 18)
    if attach:
        doc = ("仕様書 第%d版\n" % 3 + para * 40 + "製品番号 A-1024 数量 300\n") * 12
        data = doc.encode("utf-8")[:200_000]
        m.add_attachment(data, maintype="text", subtype="plain", filename=("utf-8", "", "仕様書.txt"))
    return m.as_bytes()  # LF line ends; smtp-source sends CRLF
open(f"{w}/text.eml", "wb").write(msg(False))
open(f"{w}/attach.eml", "wb").write(msg(True))
EOPY

mkdir -p "$W/policy" "$W/state"
cat >"$W/policy/policy.yaml" <<EOP
internal_domains: [corp.example.jp]
partner_domains: [partner.co.jp]
EOP
SINK_PORT=$(free_port)
smtp-sink -u nobody -c "127.0.0.1:$SINK_PORT" 1000 >/dev/null 2>&1 &
PIDS+=($!)
# Every milter column uses the same transport: a unix socket (what a milter on
# the mail host should use; MILTER_TRANSPORT=inet for loopback TCP). The
# earlier runs gave libmilter a unix socket and mamori TCP.
TRANSPORT=${MILTER_TRANSPORT:-unix}
mkdir -p "$W/sock"; chmod 755 "$W/sock"
milter_addr() {  # NAME -> the listen/connect address for that milter
  if [ "$TRANSPORT" = inet ]; then echo "inet:127.0.0.1:$(free_port)"; else echo "unix:$W/sock/$1.sock"; fi
}
milter_up() {  # ADDR: the milter listens (and Postfix may connect)
  case "$1" in
    inet:*) port_open "${1##*:}" ;;
    unix:*) test -S "${1#unix:}" && chmod 666 "${1#unix:}" ;;
  esac
}
MILTER_ADDR=$(milter_addr mamori)
# Detection rules: the committed ones (a half-edited working tree must not skew the run).
if [ -z "${MAMORI_RULES_DIR:-}" ] && git -C "$ROOT" rev-parse HEAD >/dev/null 2>&1; then
  git -C "$ROOT" archive HEAD rules/detect | tar -x -C "$W"
  export MAMORI_RULES_DIR=$W/rules/detect
fi
"$MAMORI" milter --listen "$MILTER_ADDR" --policy "$W/policy" --state "$W/state" \
  --threads "${MILTER_THREADS:-0}" \
  >"$W/milter.log" 2>&1 &
PIDS+=($!)
# The same milter without content inspection, to separate protocol cost from scanning.
mkdir -p "$W/policy_noscan" "$W/state_noscan"
cat >"$W/policy_noscan/policy.yaml" <<EOP
internal_domains: [corp.example.jp]
partner_domains: [partner.co.jp]
personal_data: {enabled: false}
EOP
MILTER2_ADDR=$(milter_addr noscan)
"$MAMORI" milter --listen "$MILTER2_ADDR" --policy "$W/policy_noscan" \
  --state "$W/state_noscan" >"$W/milter2.log" 2>&1 &
PIDS+=($!)
NOOP_ADDR=$(milter_addr noop)
"$W/noop" "$NOOP_ADDR" >"$W/noop.log" 2>&1 &
PIDS+=($!)
wait_until 20 milter_up "$MILTER_ADDR"
wait_until 20 milter_up "$MILTER2_ADDR"
wait_until 20 milter_up "$NOOP_ADDR"

common="relayhost = [127.0.0.1]:$SINK_PORT
milter_default_action = tempfail
milter_protocol = 6
smtpd_milters = "
P_PLAIN=$(free_port); P_MAMORI=$(free_port); P_LIB=$(free_port); P_NOSCAN=$(free_port)
make_postfix plain "$P_PLAIN" "${common}"
make_postfix mamori "$P_MAMORI" "${common}$MILTER_ADDR"
make_postfix libmilter "$P_LIB" "${common}$NOOP_ADDR"
make_postfix mamori_noscan "$P_NOSCAN" "${common}$MILTER2_ADDR"
for p in $P_PLAIN $P_MAMORI $P_LIB $P_NOSCAN; do wait_until 20 port_open "$p"; done

drained() { [ -z "$(find "$W/$1/queue/incoming" "$W/$1/queue/active" "$W/$1/queue/deferred" -type f 2>/dev/null | head -1)" ]; }

# Waits (polling every 5 ms, up to 120 s) until queue DIR holds no message in
# incoming, active or deferred, then prints the time.
drained_at() {
  python3 - "$1" <<'EOPY'
import os, sys, time
q = sys.argv[1]
def busy():
    for sub in ("incoming", "active", "deferred"):
        for _, _, files in os.walk(os.path.join(q, sub)):
            if files:
                return True
    return False
end = time.time() + 120
while busy() and time.time() < end:
    time.sleep(0.005)
print(f"{time.time():.6f}")
EOPY
}

# run NAME PORT -> prints two rates for the whole mix, in messages/s: SMTP
# acceptance (until smtp-source has its last 250) and end to end (until the
# last message has been delivered to smtp-sink and the queue is empty).
run() {
  local name=$1 port=$2
  local n_att=$((N / 10)) n_txt=$((N - N / 10))
  local t0 t1 t2
  wait_until 120 drained "$name" || true
  sleep "$PAUSE"
  local perf_pid=""
  if [ -n "${PERF_DIR:-}" ]; then  # optional: a system-wide profile of each timed run
    mkdir -p "$PERF_DIR"
    perf record -q -a -g -o "$PERF_DIR/$name.$(date +%s).data" >/dev/null 2>&1 &
    perf_pid=$!
    sleep 1
  fi
  t0=$(date +%s.%N)
  smtp-source -s "$S" -m "$n_txt" -f alice@corp.example.jp -t taro@client.example \
    -F "$W/text.eml" "127.0.0.1:$port" &
  local a=$!
  smtp-source -s $(( S / 5 > 0 ? S / 5 : 1 )) -m "$n_att" -f alice@corp.example.jp \
    -t taro@client.example -F "$W/attach.eml" "127.0.0.1:$port" &
  local b=$!
  wait $a $b
  t1=$(date +%s.%N)
  t2=$(drained_at "$W/$name/queue")
  if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
  python3 -c "print(f'{$N / ($t1 - $t0):.1f} {$N / ($t2 - $t0):.1f}')"
}

# Warm up each path, then measure, interleaved so no column gets a quieter machine.
for p in $P_PLAIN $P_MAMORI $P_LIB $P_NOSCAN; do
  smtp-source -s 2 -m 20 -f alice@corp.example.jp -t taro@client.example -F "$W/text.eml" "127.0.0.1:$p"
done
sleep 2
# ROUNDS rounds (default 3), each column once per round, the order rotated
# every round; each column's figure is its median.
ROUNDS=${ROUNDS:-3}
cols=(plain mamori libmilter mamori_noscan)
declare -A port_of=([plain]=$P_PLAIN [mamori]=$P_MAMORI [libmilter]=$P_LIB [mamori_noscan]=$P_NOSCAN)
declare -A acc e2e
for r in $(seq 0 $((ROUNDS - 1))); do
  for k in 0 1 2 3; do
    c=${cols[$(((k + r) % 4))]}
    read -r a e < <(run "$c" "${port_of[$c]}")
    acc[$c]="${acc[$c]:-} $a"
    e2e[$c]="${e2e[$c]:-} $e"
  done
done
for c in "${cols[@]}"; do
  echo "per-round msgs/s, $c: accepted${acc[$c]} | end to end${e2e[$c]}"
done
held=$(postqueue -c "$W/mamori/etc" -j 2>/dev/null | grep -c '"hold"' || true)
tempfails=$(grep -c '"result":"error"' "$W/state/audit.log" 2>/dev/null || true)
python3 - "$N" "$S" "$held" "$tempfails" "$TRANSPORT" "$ROUNDS" "$PAUSE" \
  "${acc[plain]}" "${acc[mamori]}" "${acc[libmilter]}" "${acc[mamori_noscan]}" \
  "${e2e[plain]}" "${e2e[mamori]}" "${e2e[libmilter]}" "${e2e[mamori_noscan]}" <<'EOPY'
import statistics, sys
n, s, held, tf, transport, rounds, pause = sys.argv[1:8]
med = [statistics.median(map(float, a.split())) for a in sys.argv[8:16]]
acc, e2e = med[:4], med[4:]
print(f"mail mix: {n} messages (90% ~4 KB text, 10% with a 200 KB attachment), {s} sessions, loopback, milters on {transport} sockets, median of {rounds} rounds, {pause} s apart")
print("accepted = SMTP acceptance rate (until smtp-source has its last reply);")
print("end to end = until the last message is delivered to smtp-sink and the queue is empty")
print(f"{'':28}{'accepted':>10}{'ratio':>8}{'end to end':>12}{'ratio':>8}")
names = ["postfix (no milter)", "postfix + mamori milter", "postfix + libmilter no-op", "postfix + mamori, no scan"]
for i, name in enumerate(names):
    print(f"{name:28}{acc[i]:>10.1f}{acc[i]/acc[0]:>8.2f}{e2e[i]:>12.1f}{e2e[i]/e2e[0]:>8.2f}")
print(f"mamori/postfix ratio: {acc[1]/acc[0]:.2f} accepted, {e2e[1]/e2e[0]:.2f} end to end (goal >= 0.80); held: {held}, tempfailed: {tf}")
EOPY
