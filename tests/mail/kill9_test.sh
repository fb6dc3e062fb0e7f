#!/usr/bin/env bash
# kill -9 test of everything in the mail guard that writes: the hold database,
# the two-person approval state and both audit logs (the milter's and the
# admin CLI's). A real Postfix pair (front -> mta with the milter) and
# smtp-sink on loopback.
#
# Phase 1: mails are sent while the milter is killed with SIGKILL at random
#   moments and restarted; the front Postfix retries whatever was tempfailed.
# Phase 2: `mamori mail release` (two approvers) and `discard` run
#   concurrently on every held mail and are killed at random moments, while
#   the milter (whose timer also recovers interrupted actions) is killed too.
# Then recovery runs and the invariants are checked:
#   - every mail is delivered at most once, and exactly the released ones are;
#   - sent = delivered + still held + discarded (nothing lost);
#   - no row is left half-done; a released mail has two distinct approvers;
#   - every release and discard is in the admin audit log;
#   - `mamori audit verify` passes on both logs.
# Usage: kill9_test.sh /path/to/mamori [ROUNDS]
set -uo pipefail
MAMORI=${1:?usage: kill9_test.sh MAMORI_BINARY [ROUNDS]}
ROUNDS=${2:-3}
HERE=$(cd "$(dirname "$0")" && pwd)

source "$HERE/lib.sh"
mail_test_setup mamori-mail-k9
MILTER_PID=""
SINK_PID=""
failures=0
cleanup() {
  [ -n "$MILTER_PID" ] && kill -9 "$MILTER_PID" 2>/dev/null
  [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null
  stop_postfix mta
  stop_postfix front
  wait 2>/dev/null
  if [ "${KEEP:-0}" = 1 ] || [ "$failures" -gt 0 ]; then echo "work directory kept: $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
rand_ms() { echo "0.$(printf '%03d' $((RANDOM % 1000)))"; }

SINK_PORT=$(free_port); MTA_PORT=$(free_port); FRONT_PORT=$(free_port); MILTER_PORT=$(free_port)
mkdir -p "$W/sink" "$W/policy" "$W/state" "$W/keys"
chmod 777 "$W/sink"
chmod 700 "$W/keys"
"$MAMORI" audit keygen --out "$W/keys" >/dev/null || { echo "audit keygen failed"; exit 1; }
cat >"$W/policy/policy.yaml" <<EOP
internal_domains: [corp.example.jp]
partner_domains: [partner.co.jp]
release: {approvals: 2}
EOP

start_milter() {
  "$MAMORI" milter --listen "inet:127.0.0.1:$MILTER_PORT" --policy "$W/policy" \
    --state "$W/state" -c "$W/mta/etc" --threads 2 --tick-seconds 1 \
    --audit-log "$W/state/audit.log" --audit-key "$W/keys/audit_signing.key" >>"$W/milter.log" 2>&1 &
  MILTER_PID=$!
  wait_until 20 port_open "$MILTER_PORT" || { echo "milter did not start:"; tail "$W/milter.log"; exit 1; }
}
kill_milter() { kill -9 "$MILTER_PID" 2>/dev/null; wait "$MILTER_PID" 2>/dev/null; MILTER_PID=""; }
mamori_mail() {
  "$MAMORI" mail "$@" --state "$W/state" -c "$W/mta/etc" --policy "$W/policy" \
    --audit-log "$W/state/admin-audit.log" --audit-key "$W/keys/audit_signing.key"
}
# Starts `mamori mail ...` in the background and adds ITS pid (not a
# subshell's) to pids, so kill -9 hits the mamori process itself.
bg_mail() {
  "$MAMORI" mail "$@" --state "$W/state" -c "$W/mta/etc" --policy "$W/policy" \
    --audit-log "$W/state/admin-audit.log" --audit-key "$W/keys/audit_signing.key" >>"$W/cli.log" 2>&1 &
  pids+=($!)
}
queue_json() { postqueue -c "$W/mta/etc" -j 2>/dev/null; }
held_ids() { queue_json | python3 -c "
import json,sys
for l in sys.stdin:
    j=json.loads(l)
    if j['queue_name']=='hold': print(j['queue_id'])"; }
front_empty() { [ -z "$(postqueue -c "$W/front/etc" -j 2>/dev/null)" ]; }
mta_settled() { [ -z "$(queue_json | grep -v '"queue_name": *"hold"')" ]; }

start_mta_pair 2s || exit 1

# Phase 1: every mail goes to a typo domain (held), through the front Postfix,
# while the milter dies and comes back.
N=$((ROUNDS * 8))
for i in $(seq 1 "$N"); do
  swaks --server "127.0.0.1:$FRONT_PORT" --silent 2 --from alice@corp.example.jp \
    --to taro@partenr.co.jp --header "Subject: K9-$i-token" --body "mail $i" >>"$W/swaks.log" 2>&1 &
  if [ $((i % 4)) -eq 0 ]; then
    sleep "$(rand_ms)"
    kill_milter
    sleep 0.3
    start_milter
  fi
done
wait_for_sends() { for p in $(jobs -p); do [ "$p" = "$SINK_PID" ] || [ "$p" = "$MILTER_PID" ] || wait "$p"; done; }
wait_for_sends
postqueue -c "$W/front/etc" -f >/dev/null 2>&1
wait_until 120 front_empty || fail "front Postfix still has mail after 120 s"
wait_until 60 mta_settled || fail "mta still has mail outside the hold queue"
held=$(held_ids | wc -l)
[ "$held" -eq "$N" ] && pass "phase 1: all $N mails held exactly once despite milter kills" \
  || fail "phase 1: $held held, expected $N"

# Phase 2: release (approvers racing) / discard, each killed at a random
# moment of its run, so kills land before, inside and after the claim, the
# audit append, postsuper and the final status write. One unkilled release
# first measures how long a run takes on this machine.
first=$(held_ids | sed -n 1p)  # sed reads all: no broken pipe
t0=$(date +%s%N)
mamori_mail release "$first" --by boss1 >>"$W/cli.log" 2>&1
RUN_MS=$(( ($(date +%s%N) - t0) / 1000000 + 1 ))
echo "one release run: $RUN_MS ms; kills land in [0, $RUN_MS] ms"
exec 3>&2 2>/dev/null  # bash's "Killed" job notices
for round in $(seq 1 "$ROUNDS"); do
  for q in $(held_ids); do
    pids=()
    case $((RANDOM % 5)) in
      0) bg_mail discard "$q" --by admin ;;
      1) bg_mail release "$q" --by boss1; bg_mail release "$q" --by boss2 ;;
      2|3) bg_mail release "$q" --by boss$((RANDOM % 3)) ;;
      4) bg_mail release "$q" --by boss1; bg_mail discard "$q" --by admin ;;
    esac
    sleep "$(printf '%d.%03d' $((r = RANDOM % RUN_MS, r / 1000)) $((r % 1000)))"
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  done
  kill_milter
  start_milter
done
exec 2>&3 3>&-

# Recovery: finish what the kills interrupted, then let Postfix settle.
mamori_mail recover --older-than 0 >>"$W/cli.log" 2>&1 || fail "mamori mail recover failed: $(tail -2 "$W/cli.log")"
# What survived the kills still works: two approvers release the rest.
for q in $(held_ids); do
  mamori_mail release "$q" --by boss1 >>"$W/cli.log" 2>&1
  rc=$?
  # Exit 1 = approval recorded, the other approver is still needed; 0 = boss2
  # had approved before the kills, so boss1's approval released it.
  if [ $rc -eq 1 ]; then
    mamori_mail release "$q" --by boss2 >>"$W/cli.log" 2>&1 \
      || fail "release of $q after the kills: $(tail -1 "$W/cli.log")"
  elif [ $rc -ne 0 ]; then fail "approval of $q after the kills: $(tail -1 "$W/cli.log")"; fi
done
postqueue -c "$W/mta/etc" -f >/dev/null 2>&1
wait_until 60 mta_settled || fail "mta did not settle after recovery"
[ -z "$(held_ids)" ] || fail "mail still held after both approvers released it"
sleep 2
kill_milter

# Invariants.
python3 - "$W" "$N" <<'EOPY'
import glob, json, re, sqlite3, subprocess, sys, collections
w, n = sys.argv[1], int(sys.argv[2])
bad = []
delivered = collections.Counter()
events_delivered = set()
for f in glob.glob(f"{w}/sink/*"):
    t = open(f, "rb").read().decode("utf-8", "replace")
    if "Auto-Submitted: auto-generated" in t:
        continue  # a notice to the sender
    m = re.search(r"K9-(\d+)-token", t)
    if m:
        delivered[m.group(1)] += 1
        e = re.search(r"X-Mamori-Event: (M\w+)", t)
        if e: events_delivered.add(e.group(1))
dups = {k: v for k, v in delivered.items() if v > 1}
if dups: bad.append(f"delivered more than once: {dups}")
db = sqlite3.connect(f"{w}/state/mail.db")
rows = {r[0]: r for r in db.execute("select event_id, queue_id, status, approvals from held")}
by_status = collections.Counter(r[2] for r in rows.values())
for e, q, st, ap in rows.values():
    if st in ("releasing", "discarding"):
        bad.append(f"{e} left half-done: {st}")
    if st == "released" and len(set(json.loads(ap))) < 2:
        bad.append(f"{e} released with approvals {ap}")
for e in events_delivered:
    if e not in rows or rows[e][2] != "released":
        bad.append(f"{e} delivered but its row is {rows.get(e, (0, 0, 'missing'))[2]}")
q = subprocess.run(["postqueue", "-c", f"{w}/mta/etc", "-j"], capture_output=True, text=True).stdout
hold = [json.loads(l)["queue_id"] for l in q.splitlines() if l.strip()]
for qid in hold:
    st = [r[2] for r in rows.values() if r[1] == qid]
    if st != ["held"]:
        bad.append(f"queue {qid} on hold but rows say {st}")
if by_status["held"] != len(hold):
    bad.append(f"{by_status['held']} rows held, {len(hold)} mails in the hold queue")
total = len(delivered) + len(hold) + by_status["discarded"]
if total != n:
    bad.append(f"sent {n} != delivered {len(delivered)} + held {len(hold)} + discarded {by_status['discarded']}")
def records(path):
    out = []
    for l in open(path, encoding="utf-8", errors="replace"):
        try:
            out.append(json.loads(l.split(" ", 1)[1]))
        except (IndexError, ValueError):
            pass  # a torn last line (kill -9 mid-append); audit verify judges it
    return out
admin = records(f"{w}/state/admin-audit.log")
milter = records(f"{w}/state/audit.log")
acts = collections.defaultdict(set)
for r in admin + milter:
    if r.get("k") == "r": acts[r["event_id"]].add(r["action"])
for e, q2, st, ap in rows.values():
    want = {"released": "mail.release", "discarded": "mail.discard"}.get(st)
    if want and want not in acts[e]:
        bad.append(f"{e} {st} without a {want} audit record")
interrupted = sum(1 for r in admin + milter if "interrupted" in r.get("user", ""))
print(f"actions finished by recovery after a kill: {interrupted}")
print(f"sent {n}: delivered {len(delivered)}, held {len(hold)}, discarded {by_status['discarded']}, "
      f"gone (tempfailed orphans) {by_status['gone']}")
for b in bad: print("  " + b)
sys.exit(1 if bad else 0)
EOPY
[ $? -eq 0 ] && pass "no mail lost or delivered twice; approvals and rows consistent; every action audited" \
  || fail "invariants (above)"

for log in audit.log admin-audit.log; do
  if "$MAMORI" audit verify --log "$W/state/$log" --pubkey "$W/keys/audit_signing.pub" >"$W/verify-$log.txt" 2>&1; then
    pass "mamori audit verify: $log OK ($(head -1 "$W/verify-$log.txt"))"
  else fail "mamori audit verify $log"; cat "$W/verify-$log.txt"; fi
done

echo "mail kill -9: $failures failure(s)"
[ "$failures" -eq 0 ]
