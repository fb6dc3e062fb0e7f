#!/usr/bin/env bash
# Integration test for `mamori milter` with a real Postfix (issue 7).
# Loopback only. Runs two private Postfix instances beside the system one:
#   front (no milter)  -> mta (smtpd_milters = mamori, tempfail)  -> smtp-sink
# Usage: postfix_milter_test.sh /path/to/mamori
set -uo pipefail
MAMORI=${1:?usage: postfix_milter_test.sh MAMORI_BINARY}
HERE=$(cd "$(dirname "$0")" && pwd)

source "$HERE/lib.sh"
mail_test_setup mamori-mail-it
MILTER_PID=""
SINK_PID=""
cleanup() {
  [ -n "$MILTER_PID" ] && kill "$MILTER_PID" 2>/dev/null
  [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null
  stop_postfix mta
  stop_postfix front
  wait 2>/dev/null
  if [ "${KEEP:-0}" = 1 ] || [ "$failures" -gt 0 ]; then
    echo "work directory kept: $W"
  else
    rm -rf "$W"
  fi
}
failures=0
trap cleanup EXIT
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

SINK_PORT=$(free_port); MTA_PORT=$(free_port); FRONT_PORT=$(free_port); MILTER_PORT=$(free_port)
mkdir -p "$W/sink" "$W/policy" "$W/state" "$W/mail"
chmod 777 "$W/sink"
cat >"$W/policy/policy.yaml" <<EOP
internal_domains: [corp.example.jp]
partner_domains: [partner.co.jp]
bcc_conversion: {enabled: true, threshold: 3, count: recipients}
personal_data: {hold_my_number_min: 1, hold_individuals_min: 10}
typo_domains: {enabled: true, max_distance: 2}
hidden_external_bcc: hold
EOP
# A small message budget, so the oversize and zip-bomb cases are cheap; removed
# before the restart in step 9, when the oversize mail must then arrive once.
cat >"$W/policy/50-budget.yaml" <<EOP
budgets: {max_message_bytes: 2000000}
EOP

start_milter() {
  "$MAMORI" milter --listen "inet:127.0.0.1:$MILTER_PORT" --policy "$W/policy" \
    --state "$W/state" -c "$W/mta/etc" --threads 2 --tick-seconds "${TICK:-15}" >>"$W/milter.log" 2>&1 &
  MILTER_PID=$!
  wait_until 20 port_open "$MILTER_PORT" || { echo "milter did not start:"; cat "$W/milter.log"; exit 1; }
}
stop_milter() {
  kill "$MILTER_PID"; wait "$MILTER_PID" 2>/dev/null; MILTER_PID=""
}

start_mta_pair 5s || exit 1

# Sink files mention a token (we put a unique one in each Subject).
# mamori's notices to senders quote the original Subject; they are not the mail.
# smtp-sink writes a file as the data arrives, so only files left alone for a
# quarter of a second count: a half-written one may show the Subject but not
# yet the headers after it (or, for a notice, not yet its Auto-Submitted).
done_files() { python3 -c "
import os, sys, time
for d, _, names in os.walk(sys.argv[1]):
    for n in names:
        p = os.path.join(d, n)
        if time.time() - os.stat(p).st_mtime > 0.25: print(p)" "$W/sink" 2>/dev/null; }
msg_files() { done_files | xargs -r grep -L -s '^Auto-Submitted: auto-generated'; }
sink_file() { msg_files | xargs -r grep -l -- "$1" | head -1; }
sink_has() { [ -n "$(sink_file "$1")" ]; }
sink_count() { msg_files | xargs -r grep -l -- "$1" | wc -l; }
queue_json() { postqueue -c "$W/mta/etc" -j 2>/dev/null; }
held_id() { queue_json | python3 -c "
import json,sys
for l in sys.stdin:
    j=json.loads(l)
    if j['queue_name']=='hold': print(j['queue_id'])" | tail -1; }
queue_empty() { [ -z "$(queue_json)" ]; }
send() { swaks --server "127.0.0.1:${PORT:-$MTA_PORT}" --silent 2 "$@" >>"$W/swaks.log" 2>&1; }
mamori_mail() { "$MAMORI" mail "$@" --state "$W/state" -c "$W/mta/etc" --policy "$W/policy"; }
db_status() { python3 -c "
import sqlite3,sys
r=sqlite3.connect('$W/state/mail.db').execute('select status from held where event_id=?',(sys.argv[1],)).fetchone()
print(r[0] if r else '')" "$1"; }
event_of() { python3 -c "
import sqlite3,sys
r=sqlite3.connect('$W/state/mail.db').execute('select event_id from held where queue_id=? order by time_micros desc',(sys.argv[1],)).fetchone()
print(r[0] if r else '')" "$1"; }
# The notice mamori sent to the sender about event $1 (it names the event in its Subject).
# For wait_until, which needs a command it can re-run (not an expanded $(...)).
held_now() { [ -n "$(held_id)" ]; }
status_is() { [ "$(db_status "$1")" = "$2" ]; }
has_notice() { [ -n "$(notice_file "$1" "$2")" ] && grep -q -- "$3" "$(notice_file "$1" "$2")"; }
answer_to() { done_files | xargs -r grep -l -- "^To: $1" | xargs -r grep -l -- "$2" | grep -q .; }
notice_file() { done_files | xargs -r grep -l -- "\[mamori $1\]" | xargs -r grep -l -- "^To: $2" | head -1; }

# 1. A clean internal mail passes unchanged (besides the verdict headers).
send --from alice@corp.example.jp --to bob@corp.example.jp \
  --header "Subject: T1-internal" --body "今日の会議は15時からです。"
if wait_until 30 sink_has T1-internal; then
  f=$(sink_file T1-internal)
  grep -q '^To: bob@corp.example.jp' "$f" && grep -q '^X-Mamori-Verdict: accept' "$f" \
    && grep -q 'X-Mamori-Event: M' "$f" && ! grep -q undisclosed "$f" \
    && pass "internal mail delivered unchanged with X-Mamori-Verdict: accept" \
    || { fail "internal mail altered"; cat "$f"; }
else fail "internal mail not delivered"; fi

# 2. Three external domains in To: Bcc conversion.
send --from alice@corp.example.jp --to a@one.example,b@two.example,c@three.example \
  --header "Subject: T2-bcc" --body "ご案内"
if wait_until 30 sink_has T2-bcc; then
  f=$(sink_file T2-bcc)
  rcpts=$(grep -ciE '^X-Rcpt-Args: <(a@one|b@two|c@three)' "$f")
  # In the message (not the sink's envelope lines) no recipient address may appear.
  body=$(awk '/^(Received|Return-Path):/ {m=1} m' "$f")
  if [ "$rcpts" -eq 3 ] && grep -q '^To: undisclosed-recipients:;' <<<"$body" \
     && ! grep -qE 'a@one.example|b@two.example|c@three.example' <<<"$body" \
     && grep -q '^X-Mamori-Verdict: accept (bcc_converted)' <<<"$body"; then
    pass "3 external recipients all delivered, none visible to another"
  else fail "Bcc conversion"; cat "$f"; fi
  ev=$(sed -n 's/^X-Mamori-Event: //p' "$f" | tr -d '\r')
  if wait_until 30 has_notice "$ev" alice@corp.example.jp "converted them to Bcc"; then
    pass "the sender gets a notice that To/Cc were converted to Bcc (event $ev)"
  else fail "no Bcc notice to the sender for $ev"; tail -5 "$W/milter.log"; fi
else fail "Bcc mail not delivered"; fi

# Test data: a CSV of 50 customers with valid My Numbers (check digit per 番号法施行規則).
python3 - "$W/mail" <<'EOPY'
import random, sys, os
from email.message import EmailMessage
from email.policy import SMTP
random.seed(7)
def my_number():
    d = [random.randint(0, 9) for _ in range(11)]
    s = sum(d[11 - n] * (n + 1 if n <= 6 else n - 5) for n in range(1, 12))  # P_n from the right
    r = s % 11
    return "".join(map(str, d)) + str(0 if r <= 1 else 11 - r)
sei = ["佐藤","鈴木","高橋","田中","伊藤","渡辺","山本","中村","小林","加藤"]
mei = ["太郎","花子","一郎","陽子","健","美咲","翔","結衣","大輔","愛"]
rows = ["氏名,個人番号,生年月日,電話番号"]
for i in range(50):
    rows.append(f"{sei[i%10]}{mei[(i*3)%10]},{my_number()},19{60+i%40}-0{1+i%9}-1{i%10},090-{1000+i:04d}-{2000+i:04d}")
csv = "\r\n".join(rows) + "\r\n"
out = sys.argv[1]
def mail(subject, to, name, charset, body, payload_charset="utf-8"):
    m = EmailMessage()
    m["From"] = "alice@corp.example.jp"
    m["To"] = to
    m["Subject"] = subject
    m.set_content(body, charset=charset)
    m.add_attachment(csv.encode(payload_charset), maintype="text", subtype="csv",
                     filename=(payload_charset if payload_charset != "utf-8" else "utf-8", "", name) if name else None)
    return m
open(f"{out}/T3.eml","wb").write(mail("T3-pd", "x@client.example", "customers.csv", "utf-8", "顧客一覧を送ります。").as_bytes(policy=SMTP))
open(f"{out}/T4.eml","wb").write(mail("T4-pd", "x@client.example", "customers.csv", "utf-8", "こちらも").as_bytes(policy=SMTP))
# UTF-8 with a Japanese RFC 2231 file name.
open(f"{out}/T8.eml","wb").write(mail("T8-utf8", "x@client.example", "顧客一覧.csv", "utf-8", "顧客一覧（UTF-8）").as_bytes(policy=SMTP))
# ISO-2022-JP body and attachment, RFC 2231 file name in ISO-2022-JP.
m = EmailMessage()
m["From"] = "alice@corp.example.jp"; m["To"] = "x@client.example"; m["Subject"] = "T9-jis"
m.set_content("顧客一覧をお送りします。", charset="iso-2022-jp")
m.add_attachment(csv.encode("iso-2022-jp"), maintype="text", subtype="csv",
                 filename=("iso-2022-jp", "ja", "顧客名簿.csv"))
open(f"{out}/T9.eml","wb").write(m.as_bytes(policy=SMTP))
# ISO-2022-JP internal mail without personal data: passes.
m = EmailMessage()
m["From"] = "alice@corp.example.jp"; m["To"] = "bob@corp.example.jp"; m["Subject"] = "T10-jis-clean"
m.set_content("明日の打ち合わせの件、承知しました。", charset="iso-2022-jp")
m.add_attachment("議事録です。\r\n".encode("iso-2022-jp"), maintype="text", subtype="plain",
                 filename=("iso-2022-jp", "ja", "議事録.txt"))
open(f"{out}/T10.eml","wb").write(m.as_bytes(policy=SMTP))
# Zip attachments: the CSV zipped; an encrypted zip (PPAP, made by zip -P
# below); a zip bomb (200 MB of zeros in ~200 KB).
import io, zipfile
def zmail(subject, name, data):
    m = EmailMessage()
    m["From"] = "alice@corp.example.jp"; m["To"] = "x@client.example"; m["Subject"] = subject
    m.set_content("添付をご確認ください。")
    m.add_attachment(data, maintype="application", subtype="zip", filename=name)
    return m.as_bytes(policy=SMTP)
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("顧客一覧.csv", csv.encode("utf-8"))
open(f"{out}/T12.eml","wb").write(zmail("T12-zip", "customers.zip", buf.getvalue()))
open(f"{out}/customers.csv","wb").write(csv.encode("utf-8"))
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    with z.open("zeros.csv", "w") as f:
        chunk = b"0" * (1 << 20)
        for _ in range(200):
            f.write(chunk)
open(f"{out}/T14.eml","wb").write(zmail("T14-zipbomb", "bomb.zip", buf.getvalue()))
EOPY
(cd "$W/mail" && zip -q -P himitsu ppap.zip customers.csv) || fail "test data: zip -P"
python3 - "$W/mail" <<'EOPY'
import sys
from email.message import EmailMessage
from email.policy import SMTP
out = sys.argv[1]
m = EmailMessage()
m["From"] = "alice@corp.example.jp"; m["To"] = "x@client.example"; m["Subject"] = "T13-ppap"
m.set_content("パスワードは別途お送りします。")
m.add_attachment(open(f"{out}/ppap.zip","rb").read(), maintype="application", subtype="zip", filename="customers.zip")
open(f"{out}/T13.eml","wb").write(m.as_bytes(policy=SMTP))
EOPY
grep -q "filename\*" "$W/mail/T9.eml" || fail "test data: T9 has no RFC 2231 file name"

# 3. 50 customers with My Numbers to an external address: hold, list, release.
send --from alice@corp.example.jp --to x@client.example --data "@$W/mail/T3.eml"
if wait_until 30 held_now; then
  qid=$(held_id)
  list=$(mamori_mail list)
  if grep -q "$qid" <<<"$list" && grep -q my_number <<<"$list" && grep -q 'a\*\*\*\*@corp.example.jp' <<<"$list"; then
    pass "personal data held; mamori mail list shows reason and (masked) sender"
  else fail "mamori mail list: $list"; fi
  sink_has T3-pd && fail "held mail was delivered before release"
  ev=$(mamori_mail list --json | python3 -c "import json,sys; print([m['event_id'] for m in json.load(sys.stdin) if m['queue_id']=='$qid'][0])")
  if mamori_mail release "$ev" --by admin1 >>"$W/cli.log" 2>&1 && wait_until 30 sink_has T3-pd; then
    pass "mamori mail release delivers the held mail"
  else fail "release did not deliver"; cat "$W/cli.log"; fi
else fail "personal-data mail not held"; tail -5 "$W/milter.log"; queue_json; fi

# 4. Another one: discard removes it.
send --from alice@corp.example.jp --to x@client.example --data "@$W/mail/T4.eml"
if wait_until 30 held_now; then
  qid=$(held_id)
  if mamori_mail discard "$qid" --by alice >>"$W/cli.log" 2>&1 && wait_until 10 queue_empty; then
    sleep 1
    sink_has T4-pd && fail "discarded mail was delivered" || pass "mamori mail discard removes the held mail"
  else fail "discard"; cat "$W/cli.log"; fi
  # Releasing it again is refused.
  mamori_mail release "$qid" >>"$W/cli.log" 2>&1 && fail "release of a discarded mail succeeded"
else fail "second personal-data mail not held"; fi

# 5. Typo of a partner domain: held. The sender is told why and cancels it by
#    mail; another user cannot.
send --from alice@corp.example.jp --to taro@partenr.co.jp --header "Subject: T5-typo" --body "見積書"
if wait_until 30 held_now; then
  qid=$(held_id); ev=$(event_of "$qid")
  mamori_mail list | grep -q "typo" && pass "typo domain partenr.co.jp held" || fail "typo reason missing"
  if wait_until 30 has_notice "$ev" alice@corp.example.jp "mamori-cancel+$ev@corp.example.jp"; then
    pass "the sender gets a hold notice with the reason and the cancel address"
  else fail "no hold notice for $ev"; fi
  send --from bob@corp.example.jp --to "mamori-cancel+$ev@corp.example.jp" --header "Subject: cancel"
  if wait_until 30 answer_to bob@corp.example.jp "Could not cancel" \
     && [ "$(held_id)" = "$qid" ] && [ "$(db_status "$ev")" = held ]; then
    pass "another user cannot cancel the sender's held mail"
  else fail "cancel by another user: status $(db_status "$ev")"; fi
  send --from alice@corp.example.jp --to "mamori-cancel+$ev@corp.example.jp" --header "Subject: cancel"
  if wait_until 30 status_is "$ev" discarded && wait_until 10 queue_empty \
     && wait_until 30 answer_to alice@corp.example.jp "was cancelled"; then
    sink_has T5-typo && fail "cancelled mail was delivered" \
      || pass "the sender cancels by mail to mamori-cancel+EVENT: removed, confirmed, never delivered"
  else fail "sender cancel by mail: status $(db_status "$ev")"; tail -5 "$W/milter.log"; fi
  sink_has "Subject: cancel" && fail "a cancel request was delivered"
else fail "typo domain not held"; fi

# 6. Hidden external Bcc on an all-internal To: held.
send --from alice@corp.example.jp --to bob@corp.example.jp,spy@freemail.example \
  --header "To: bob@corp.example.jp" --header "Subject: T6-hiddenbcc" --body "社外秘"
if wait_until 30 held_now; then
  mamori_mail list | grep -q hidden_external_bcc && pass "hidden external Bcc held" || fail "hidden bcc reason"
  mamori_mail discard "$(held_id)" >>"$W/cli.log" 2>&1
else fail "hidden external Bcc not held"; fi
wait_until 10 queue_empty

# 7. ISO-2022-JP and UTF-8 mails with Japanese RFC 2231 file names.
send --from alice@corp.example.jp --to x@client.example --data "@$W/mail/T8.eml"
if wait_until 30 held_now && mamori_mail list | grep -q my_number; then
  pass "UTF-8 mail with RFC 2231 file name 顧客一覧.csv inspected and held"
  mamori_mail discard "$(held_id)" >>"$W/cli.log" 2>&1
else fail "UTF-8 RFC 2231 attachment not held"; fi
wait_until 10 queue_empty
send --from alice@corp.example.jp --to x@client.example --data "@$W/mail/T9.eml"
if wait_until 30 held_now && mamori_mail list | grep -q my_number; then
  pass "ISO-2022-JP mail with RFC 2231 file name 顧客名簿.csv inspected and held"
  mamori_mail discard "$(held_id)" >>"$W/cli.log" 2>&1
else fail "ISO-2022-JP attachment not held"; fi
send --from alice@corp.example.jp --to bob@corp.example.jp --data "@$W/mail/T10.eml"
if wait_until 30 sink_has T10-jis-clean; then
  f=$(sink_file T10-jis-clean)
  grep -q "X-Mamori-Verdict: accept" "$f" && grep -qi 'charset="\?iso-2022-jp' "$f" \
    && pass "clean ISO-2022-JP internal mail passes" || fail "ISO-2022-JP internal mail altered"
else fail "ISO-2022-JP internal mail not delivered"; fi

# 7b. Zip attachments within budgets.
send --from alice@corp.example.jp --to x@client.example --data "@$W/mail/T12.eml"
if wait_until 30 held_now && mamori_mail list | grep -q my_number; then
  pass "zipped CSV of My Numbers inspected and held"
  mamori_mail discard "$(held_id)" >>"$W/cli.log" 2>&1
else fail "zipped CSV not held"; tail -3 "$W/milter.log"; fi
wait_until 10 queue_empty
send --from alice@corp.example.jp --to x@client.example --data "@$W/mail/T13.eml"
if wait_until 30 held_now && mamori_mail list | grep -q uninspectable_part; then
  pass "encrypted zip (PPAP) cannot be inspected: held (uninspectable_part)"
  mamori_mail discard "$(held_id)" >>"$W/cli.log" 2>&1
else fail "encrypted zip not held"; mamori_mail list; fi
wait_until 10 queue_empty
out=$(swaks --server "127.0.0.1:$MTA_PORT" --from alice@corp.example.jp --to x@client.example \
  --data "@$W/mail/T14.eml" 2>&1)
sleep 2
if sink_has T14-zipbomb; then fail "zip bomb was delivered"
elif grep -qE '^<\*\* +451 .*mamori' <<<"$out"; then pass "zip bomb: 451 tempfail (fail closed), not delivered"
elif [ -n "$(held_id)" ]; then pass "zip bomb: held, not delivered"; mamori_mail discard "$(held_id)" >>"$W/cli.log" 2>&1
else fail "zip bomb neither tempfailed nor held"; echo "$out" | tail -4; fi
wait_until 10 queue_empty

# 8. Milter down: 4xx, nothing lost; the front Postfix retries once it is back.
stop_milter
out=$(swaks --server "127.0.0.1:$MTA_PORT" --from alice@corp.example.jp --to bob@corp.example.jp \
  --header "Subject: T7-direct" 2>&1)
if grep -qE '^<\*\* +4[0-9][0-9] ' <<<"$out" && ! grep -qE '250 .*queued' <<<"$out"; then
  pass "milter down: Postfix answers 4xx"
else fail "milter down: expected 4xx"; echo "$out" | tail -8; fi
PORT=$FRONT_PORT send --from alice@corp.example.jp --to bob@corp.example.jp \
  --header "Subject: T7-outage" --body "retry me"
sleep 3
sink_has T7-outage && fail "mail passed the MTA while the milter was down"
postqueue -c "$W/front/etc" -j | grep -q '"queue_name": *"deferred"\|"queue_name": *"active"\|"queue_name": *"incoming"' \
  && pass "front Postfix keeps the mail queued while the milter is down" \
  || fail "front queue does not hold the mail"
start_milter
postqueue -c "$W/front/etc" -f >/dev/null 2>&1
if wait_until 60 sink_has T7-outage; then
  sleep 2
  [ "$(sink_count T7-outage)" -eq 1 ] && pass "delivered exactly once after the milter came back" \
    || fail "delivered $(sink_count T7-outage) times"
else fail "mail not delivered after the milter came back"; fi

# 8b. A message over the budget: 4xx (tempfail), so the front Postfix keeps it
#     and retries; it arrives once the budget allows it (after step 9's restart).
python3 -c "
import sys
body = ''.join('行%06d: 予算を超えるテストメールの本文です。\\n' % i for i in range(60000))
sys.stdout.write('From: alice@corp.example.jp\\nTo: bob@corp.example.jp\\nSubject: T15-oversize\\n'
                 'Content-Type: text/plain; charset=utf-8\\n\\n' + body)" >"$W/mail/T15.eml"
out=$(swaks --server "127.0.0.1:$MTA_PORT" --from alice@corp.example.jp --to bob@corp.example.jp \
  --data "@$W/mail/T15.eml" 2>&1)
grep -qE '^<\*\* +451 4.3.0 mamori' <<<"$out" && pass "message over the budget: 451 4.3.0 (tempfail)" \
  || { fail "oversize message: expected 451"; echo "$out" | tail -4; }
PORT=$FRONT_PORT send --from alice@corp.example.jp --to bob@corp.example.jp --data "@$W/mail/T15.eml"
sleep 4
if ! sink_has T15-oversize && postqueue -c "$W/front/etc" -j | grep -q '"deferred"\|"active"'; then
  pass "oversize mail stays queued in the front Postfix (retried, not lost)"
else fail "oversize mail not kept by the front Postfix"; fi
grep -q '"reason":"budget"' "$W/state/audit.log" && pass "budget tempfail is in the audit log" \
  || fail "budget tempfail not audited"

# 9. 一時保留 and 上長承認: restart the milter with a delay policy and two-person release.
stop_milter
rm "$W/policy/50-budget.yaml"
cat >>"$W/policy/policy.yaml" <<EOP
delay_external: {enabled: true, seconds: 10}
release: {approvals: 2}
EOP
TICK=1 start_milter
postqueue -c "$W/front/etc" -f >/dev/null 2>&1
if wait_until 60 sink_has T15-oversize; then
  sleep 2
  [ "$(sink_count T15-oversize)" -eq 1 ] && pass "oversize mail delivered exactly once when the budget allows it" \
    || fail "oversize mail delivered $(sink_count T15-oversize) times"
else fail "oversize mail not delivered after the budget was raised"; fi
# The sender cancels during the 一時保留 delay.
send --from alice@corp.example.jp --to y@client.example --header "Subject: T16-delay-cancel" --body "取り消します"
if wait_until 30 held_now; then
  qid=$(held_id); ev=$(event_of "$qid")
  send --from alice@corp.example.jp --to mamori-cancel@corp.example.jp --header "Subject: Re: [mamori $ev]"
  if wait_until 30 status_is "$ev" discarded && wait_until 10 queue_empty; then
    sleep 12  # past the delay: the timer must not deliver a cancelled mail
    sink_has T16-delay-cancel && fail "mail cancelled during the delay was delivered" \
      || pass "the sender cancels during 一時保留 (event id in the Subject); never delivered"
  else fail "cancel during delay: status $(db_status "$ev")"; fi
else fail "external mail not delayed (cancel test)"; fi
send --from alice@corp.example.jp --to y@client.example --header "Subject: T11-delay" --body "お見積り"
if wait_until 30 held_now; then
  mamori_mail list | grep -q delay_external && pass "external mail held for the 一時保留 delay" \
    || fail "delay reason missing"
  if wait_until 30 sink_has T11-delay; then pass "delayed mail released automatically"
  else fail "delayed mail not released"; tail -5 "$W/milter.log"; fi
else fail "external mail not delayed"; fi
wait_until 10 queue_empty
send --from alice@corp.example.jp --to x@client.example --data "@$W/mail/T4.eml"
if wait_until 30 held_now; then
  qid=$(held_id)
  mamori_mail release "$qid" --by boss1 >>"$W/cli.log" 2>&1; rc1=$?
  mamori_mail release "$qid" --by boss1 >>"$W/cli.log" 2>&1; rc2=$?
  sleep 2
  if [ $rc1 -eq 1 ] && [ $rc2 -eq 1 ] && ! sink_has T4-pd && [ "$(held_id)" = "$qid" ]; then
    pass "two-person rule: one approver (twice) does not release"
  else fail "two-person rule: rc=$rc1/$rc2"; cat "$W/cli.log"; fi
  if mamori_mail release "$qid" --by boss2 >>"$W/cli.log" 2>&1 && wait_until 30 sink_has T4-pd; then
    pass "second approver releases the mail"
  else fail "second approver did not release"; cat "$W/cli.log"; fi
else fail "personal-data mail not held (approval test)"; fi

# 10. Every verdict is in the audit log, without raw addresses.
if [ -s "$W/state/audit.log" ] && grep -q '"result":"hold"' "$W/state/audit.log" \
   && grep -q '"action":"mail.release"' "$W/state/admin-audit.log" \
   && grep -q '"action":"mail.approve"' "$W/state/admin-audit.log" \
   && grep -q '"action":"mail.release"' "$W/state/audit.log" \
   && grep -q '"action":"mail.cancel"' "$W/state/audit.log" \
   && grep -q '"my_numbers":50' "$W/state/audit.log" \
   && grep -q '"source_ip":"127.0.0.1"' "$W/state/audit.log" \
   && ! grep -q 'alice@corp.example.jp' "$W/state/audit.log" "$W/state/admin-audit.log"; then
  pass "audit log has verdicts (50 My Numbers counted, client address from the milter macros) and admin actions, no raw sender addresses"
else fail "audit log"; head -3 "$W/state/audit.log"; fi

echo "mail integration: $failures failure(s)"
[ "$failures" -eq 0 ]
