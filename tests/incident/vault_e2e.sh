#!/usr/bin/env bash
# End-to-end on a REAL vault (issue 5): a vault user downloads 1,200 customer
# records to a device that is later reported lost and remotely locked. Then
# open -> scope -> facts -> assess -> docs -> estimate, run against the vault's
# own audit log and its own database, must give a complete PPC draft with
# 1,200 people and the right deadlines.
#
# Everything goes through the `mamori` binary as a user would: `serve --init`,
# `serve` on 127.0.0.1, `enroll` with the one-time token, `login` with
# password + TOTP (oathtool), `admin`, `pledge`, `put`, `get`, `admin devices
# lock`, `incident ...`, `audit verify`.
#
# usage: vault_e2e.sh MAMORI_BINARY SOURCE_DIR
set -euo pipefail
MAMORI="$1"; SRC="$2"
command -v oathtool >/dev/null || { echo "FAIL: oathtool is missing (apt-get install oathtool)" >&2; exit 1; }
command -v pdftotext >/dev/null || { echo "FAIL: pdftotext is missing (poppler-utils)" >&2; exit 1; }
WORK="$(mktemp -d /tmp/incident_vault_e2e.XXXXXX)"
SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
trap 'stop_server; rm -rf "$WORK"' EXIT
fail() {
  echo "FAIL: $*" >&2
  [ -f "$WORK/serve.out" ] && { echo "--- serve output:" >&2; tail -n 20 "$WORK/serve.out" >&2; }
  exit 1
}
expect() {  # expect "description" "needle" "haystack"
  grep -qF -- "$2" <<<"$3" || fail "$1: '$2' not found in: ${3:0:3000}"
}
json() {  # json 'python expression over j' <<< JSON
  python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"
}

DATA="$WORK/data" KEYS="$WORK/keys"
PW="$WORK/password"; printf 'Kumo-7tsuki&Hoshi9' > "$PW"; chmod 600 "$PW"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="https://127.0.0.1:$PORT"

start_server() {
  "$MAMORI" serve --data "$DATA" --keys "$KEYS" --listen "127.0.0.1:$PORT" >>"$WORK/serve.out" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do  # readiness poll, not a timing assertion
    if curl -sf --cacert "$DATA/pki/ca.crt" "$URL/v1/health" >/dev/null 2>&1; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || fail "mamori serve exited early"
    sleep 0.1
  done
  fail "mamori serve did not answer on $URL"
}

# ---- 1. a new vault, its first admin, a member on an enrolled laptop
INIT=$("$MAMORI" serve --init --data "$DATA" --keys "$KEYS" --san "DNS:localhost,IP:127.0.0.1")
ADMIN_TOKEN=$(grep -A1 "one-time enrolment token" <<<"$INIT" | tail -n1 | tr -d ' ')
[ -n "$ADMIN_TOKEN" ] || fail "no admin token in: $INIT"
start_server

totp_of() {  # the base32 secret from the otpauth:// URI that enroll prints once
  python3 -c 'import re,sys; m=re.search(r"otpauth://\S*[?&]secret=([A-Z2-7]+)", sys.argv[1]); print(m.group(1) if m else "")' "$1"
}
enroll() {  # enroll PROFILE USER TOKEN DEVICE_NAME -> prints enroll's output
  "$MAMORI" enroll --profile "$WORK/$1" --server "$URL" --ca "$DATA/pki/ca.crt" --user "$2" \
    --token "$3" --device-name "$4" --password-file "$PW"
}
login() {  # login PROFILE SECRET
  "$MAMORI" login --profile "$WORK/$1" --password-file "$PW" --totp "$(oathtool --totp -b "$2")" \
    >/dev/null || fail "login $1"
}
admin() { "$MAMORI" admin --profile "$WORK/admin" "$@"; }

OUT=$(enroll admin admin "$ADMIN_TOKEN" admin-pc) || fail "admin enroll: $OUT"
ADMIN_TOTP=$(totp_of "$OUT"); [ -n "$ADMIN_TOTP" ] || fail "no TOTP URI in: $OUT"
login admin "$ADMIN_TOTP"
admin groups add sales >/dev/null
FOLDER=$(admin folders add 顧客 | json 'j["id"]')
admin folders acl "$FOLDER" sales rw >/dev/null

new_member() {  # new_member USER DEVICE_NAME -> sets M_DEVICE, M_TOTP
  local tok out
  tok=$(admin users add "$1" --role member | json 'j["enrol_token"]')
  admin groups member sales "$1" >/dev/null
  out=$(enroll "$1" "$1" "$tok" "$2") || fail "$1 enroll: $out"
  M_DEVICE=$(sed -n 's/^device \([0-9]*\) enrolled: active$/\1/p' <<<"$out")
  M_TOTP=$(totp_of "$out")
  [ -n "$M_DEVICE" ] && [ -n "$M_TOTP" ] || fail "$1 enroll output: $out"
  login "$1" "$M_TOTP"
  "$MAMORI" pledge --profile "$WORK/$1" --accept 2026-1 >/dev/null
}
new_member tanaka laptop-042; TANAKA_DEVICE=$M_DEVICE
new_member suzuki desktop-007

# ---- 2. the data: 1,200 customers for tanaka, 300 others for suzuki (noise)
# As a text ledger (顧客台帳), not CSV: the vault labels uploads by scanning the raw
# bytes without CSV column context, and today labels a headed CSV of these same
# customers with 3 individuals and no names (a vault gap, docs/incident.md §11).
python3 "$SRC/tests/incident/make_customers.py" --format ledger --seed 1 1200 "$WORK/east.txt"
python3 "$SRC/tests/incident/make_customers.py" --format ledger --seed 2 300 "$WORK/west.txt"
"$MAMORI" put --profile "$WORK/tanaka" "$FOLDER" "$WORK/east.txt" --name 顧客台帳_東日本.txt \
  >/dev/null || fail "put east"
"$MAMORI" put --profile "$WORK/suzuki" "$FOLDER" "$WORK/west.txt" --name 顧客台帳_西日本.txt \
  >/dev/null || fail "put west"
# The vault labelled the upload with the detection engine while it streamed.
LS=$("$MAMORI" ls --profile "$WORK/tanaka" "$FOLDER")
python3 - "$LS" <<'PY' || fail "vault labels: $LS"
import json, sys
files = {f["name"]: f["label"] for f in json.loads(sys.argv[1])["files"]}
east, west = files["顧客台帳_東日本.txt"], files["顧客台帳_西日本.txt"]
assert east["scanned"] is True and east["individuals"] == 1200, east
assert west["individuals"] == 300, west
t = east["types"]
assert t["jp.address"] == 1200 and t["jp.phone"] == 1200 and t["jp.birth_date"] == 1200, t
# Names with compatibility ideographs (山﨑) are missed by the detector today;
# its accuracy is tests/accuracy's job. Here: names are found, and labelled.
assert 1150 <= t["jp.person_name"] <= 1200, t
assert set(t) == {"jp.address", "jp.phone", "jp.birth_date", "jp.person_name"}, t
PY

# tanaka downloads the 1,200 customers to laptop-042, twice; suzuki downloads
# the 300 to another device. Only tanaka's laptop is lost.
mkdir -p "$WORK/laptop" "$WORK/desktop"
"$MAMORI" get --profile "$WORK/tanaka" "$FOLDER" 顧客台帳_東日本.txt -o "$WORK/laptop/east.txt" >/dev/null
"$MAMORI" get --profile "$WORK/tanaka" "$FOLDER" 顧客台帳_東日本.txt -o "$WORK/laptop/east2.txt" >/dev/null
"$MAMORI" get --profile "$WORK/suzuki" "$FOLDER" 顧客台帳_西日本.txt -o "$WORK/desktop/west.txt" >/dev/null
cmp -s "$WORK/laptop/east.txt" "$WORK/east.txt" || fail "downloaded copy differs"

# ---- 3. the laptop is reported lost: the admin locks it remotely (遠隔ロック)
admin devices lock "$TANAKA_DEVICE" | json 'j' >/dev/null || fail "lock d$TANAKA_DEVICE"
set +e
"$MAMORI" ls --profile "$WORK/tanaka" "$FOLDER" >/dev/null 2>"$WORK/locked.err"; RC=$?
set -e
[ "$RC" = "1" ] || fail "the locked device was not refused (exit $RC)"
expect "lock refusal" "遠隔ロック" "$(cat "$WORK/locked.err")"
sleep 1  # the awareness time is strictly after the lock record (second resolution)
AWARE=$(python3 -c 'import datetime as d; print(d.datetime.now(d.timezone(d.timedelta(hours=9))).replace(microsecond=0).isoformat())')

# ---- 4. the incident, stored in the vault's own database, scoped from its own audit log
export MAMORI_DB="$DATA/meta.db"
AUDIT="$DATA/audit/vault.log"
ID=$("$MAMORI" incident open --actor compliance --title "顧客名簿をダウンロードしたノートPCの紛失" \
      --aware-at "$AWARE")
[ "$ID" = "1" ] || fail "open returned '$ID'"
"$MAMORI" incident note --actor compliance --id "$ID" --who "営業部の従業者1名" \
  --what "顧客名簿をダウンロードしたノートPCを紛失したと報告。管理者が遠隔ロック" \
  --when "$AWARE" --where "社外" --how "置き忘れ" >/dev/null

# By device name (resolved through the vault database) ...
SCOPE=$("$MAMORI" incident scope --actor compliance --id "$ID" --audit-log "$AUDIT" \
  --user tanaka --device laptop-042 --vault-db "$DATA/meta.db" --action get --until "$AWARE" \
  --format json)
python3 - "$SCOPE" "$TANAKA_DEVICE" <<'PY'
import json, sys
s = json.loads(sys.argv[1]); dev = "d" + sys.argv[2]
m = s["summary"]
assert m["persons"] == 1200, m
assert m["person_method"] == "sum", m
assert m["objects"] == 1 and m["records_matched"] == 2, m      # two downloads, one object
assert m["users"] == 1 and m["devices"] == 1, m
assert m["data_items"] == ["address", "birth_date", "name", "phone"], m
assert m["unmapped_types"] == [] and m["unlabelled_objects"] == 0, m
assert m["suspect_objects"] == 0, m
# A download is plaintext on the device: not "encrypted with the key safe".
assert m["encrypted_key_safe_objects"] == 0, m
assert any("保管庫（vault）からのダウンロード" in b and "平文" in b for b in m["encryption_basis"]), m
assert s["query"]["device_ids"] == [dev], s["query"]
assert s["query"]["device_names_resolved"] == {"laptop-042": [dev]}, s["query"]
o = s["objects"][0]
assert o["component"] == "vault" and o["actions"] == ["get"] and o["labelled"], o
assert o["individuals"] == 1200 and o["encrypted_key_safe"] is False, o
assert len(o["encryption_basis"]) == 1, o
assert m["encryption_basis"][o["encryption_basis"][0]].startswith("保管庫（vault）からのダウンロード"), o
assert set(o["types"]) == {"jp.address", "jp.birth_date", "jp.person_name", "jp.phone"}, o
assert o["types"]["jp.address"] == 1200 and o["types"]["jp.phone"] == 1200, o
f = s["facts"]
assert f["persons"] == 1200 and f["encryption"] is None, f
PY
# ... and by the id the audit records carry: the same answer.
SCOPE2=$("$MAMORI" incident scope --actor compliance --id "$ID" --audit-log "$AUDIT" \
  --user tanaka --device "d$TANAKA_DEVICE" --action get --until "$AWARE" --format json)
[ "$(json 'j["summary"]' <<<"$SCOPE")" = "$(json 'j["summary"]' <<<"$SCOPE2")" ] \
  || fail "scope by name and by d<ID> differ"
# The vault's log holds the remote lock, before the awareness time.
"$MAMORI" audit export --log "$AUDIT" --component vault > "$WORK/vault.jsonl"
python3 - "$WORK/vault.jsonl" "$TANAKA_DEVICE" "$AWARE" <<'PY'
import datetime, json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
aware = datetime.datetime.fromisoformat(sys.argv[3])
t = lambda r: datetime.datetime.fromisoformat(r["time"].replace("Z", "+00:00"))
locks = [r for r in recs if r["action"] == "admin.devices.lock" and r["result"] == "allow"
         and r["extra"].get("target_device") == int(sys.argv[2])]
assert len(locks) == 1 and t(locks[0]) < aware, locks
gets = [r for r in recs if r["action"] == "get" and r["device"] == "d" + sys.argv[2]]
assert len(gets) == 2 and all(t(g) < t(locks[0]) for g in gets), gets
PY
# The JSONL export of the same log gives the same scope as the live log.
SCOPE3=$("$MAMORI" incident scope --actor compliance --id "$ID" --audit-jsonl "$WORK/vault.jsonl" \
  --user tanaka --device "d$TANAKA_DEVICE" --action get --until "$AWARE" --format json)
[ "$(json 'j["summary"]["persons"], j["summary"]["data_items"]' <<<"$SCOPE3")" \
  = "$(json 'j["summary"]["persons"], j["summary"]["data_items"]' <<<"$SCOPE")" ] \
  || fail "scope from the export differs: $(json 'j["summary"]' <<<"$SCOPE3")"
# Without the user and device filters suzuki's 300 count too: the filters matter
# (a separate database, so the real incident's timeline is untouched).
MAMORI_DB="$WORK/other.db" "$MAMORI" incident open --title control --aware-at "$AWARE" >/dev/null
ALL=$(MAMORI_DB="$WORK/other.db" "$MAMORI" incident scope --id 1 --audit-log "$AUDIT" --action get \
  --until "$AWARE" --format json)
[ "$(json '(j["summary"]["persons"], j["summary"]["objects"], j["summary"]["users"])' <<<"$ALL")" \
  = "(1500, 2, 2)" ] || fail "unfiltered scope: $(json 'j["summary"]' <<<"$ALL")"
set +e
ERR=$("$MAMORI" incident scope --id "$ID" --audit-log "$AUDIT" --device no-such-pc \
  --vault-db "$DATA/meta.db" 2>&1); RC=$?
set -e
[ "$RC" = "2" ] || fail "unknown device name: exit $RC"
expect "unknown device name" 'no device named "no-such-pc"' "$ERR"

"$MAMORI" incident facts --actor compliance --id "$ID" --malicious-suspected false \
  --narrative organization=株式会社まもり商事 \
  --narrative "contact=お客様相談窓口 0120-000-000（平日9時～17時）" \
  --narrative cause=従業者が顧客名簿をダウンロードしたノートPCを社外で紛失したため \
  --narrative "secondary_damage=現時点で二次被害は確認されていません" \
  --narrative prevention=端末への個人データのダウンロード制限と端末暗号化の徹底 >/dev/null

# ---- 5. assess: 規則7条4号 (1,200 > 1,000), 速報 aware+3..+5, 確報 aware+29 (民法140条: +30)
EXPECTED=$(python3 - "$AWARE" <<'PY'
import datetime, json, sys
d = datetime.datetime.fromisoformat(sys.argv[1]).date()   # already in JST
day = lambda n: d + datetime.timedelta(days=n)
ja = lambda x: f"{x.year}年{x.month}月{x.day}日"
print(json.dumps({"from": day(3).isoformat(), "to": day(5).isoformat(), "final": day(29).isoformat(),
                  "civil": day(30).isoformat(), "from_ja": ja(day(3)), "to_ja": ja(day(5)),
                  "final_ja": ja(day(29)), "aware": d.isoformat()}))
PY
)
ASSESS=$("$MAMORI" incident assess --id "$ID" --format json)
python3 - "$ASSESS" "$EXPECTED" <<'PY'
import json, sys
a, e = json.loads(sys.argv[1]), json.loads(sys.argv[2])
ap = a["appi"]
assert a["aware_date"] == e["aware"], (a["aware_date"], e)
assert ap["report_required"] is True and ap["triggers"] == [4] and ap["exempt"] is None, ap
assert ap["preliminary_due"] == {"from": e["from"], "to": e["to"]}, ap
assert ap["final_due"] == e["final"] and ap["final_due_civil_code_140"] == e["civil"], ap
assert ap["final_days"] == 30 and ap["notify_individuals"] is True, ap
assert a["my_number"]["report_required"] is False, a["my_number"]
assert any("1,200人" in r and "規則7条4号" in r for r in a["reasons"]), a["reasons"]
PY

# ---- 6. docs: the PPC draft (all 9 items of 規則8条1項) with 1,200 people and the deadlines
"$MAMORI" incident docs --actor compliance --id "$ID" --out "$WORK/docs" >/dev/null
for f in ppc_report notice_individuals public_notice call_centre_qa ipa_sharing; do
  for ext in md html pdf; do [ -s "$WORK/docs/$f.$ext" ] || fail "missing $f.$ext"; done
done
PDF=$(pdftotext -enc UTF-8 "$WORK/docs/ppc_report.pdf" - 2>/dev/null | tr -d '\f')
PDF1=$(tr -d ' \n' <<<"$PDF")  # pdftotext may wrap a long heading
for item in "一概要" "二漏えい等が発生し、又は発生したおそれがある個人データの項目" \
  "三漏えい等が発生し、又は発生したおそれがある個人データに係る本人の数" "四原因" \
  "五二次被害又はそのおそれの有無及びその内容" "六本人への対応の実施状況" "七公表の実施状況" \
  "八再発防止のための措置" "九その他参考となる事項"; do
  expect "ppc_report.pdf item" "$item" "$PDF1"
done
for needle in "1,200人" "$(json 'j["from_ja"]' <<<"$EXPECTED")" "$(json 'j["to_ja"]' <<<"$EXPECTED")" \
  "$(json 'j["final_ja"]' <<<"$EXPECTED")" "規則7条4号" "株式会社まもり商事" "氏名" "住所" "電話番号" \
  "生年月日" "暗号化されていない" "保管庫（vault）からのダウンロード"; do
  expect "ppc_report.pdf" "$needle" "$PDF1"
done
# The documents count people; they never name the user or show a customer's data.
FIRST=$(awk '/^氏名: /{sub(/^氏名: /, ""); print; exit}' "$WORK/east.txt")
[ -n "$FIRST" ] || fail "no name in the generated ledger"
for f in "$WORK"/docs/*.md "$WORK"/docs/*.html; do
  ! grep -q "tanaka" "$f" || fail "$f names the user"
  ! grep -qF "$FIRST" "$f" || fail "$f shows a customer's name"
done

# ---- 7. estimate: 氏名・住所・電話・生年月日 -> 500 × (10^0 + 5^0) × 6 = 6,000円/人 × 1,200
EST=$("$MAMORI" incident estimate --id "$ID" --format json)
python3 - "$EST" <<'PY'
import json, sys
e = json.loads(sys.argv[1])
assert e["jo_model"]["per_person_yen"] == 6000 and e["jo_model"]["total_yen"] == 7200000, e["jo_model"]
# letters 150×1,200 + call centre 1,000,000 + 1,500×120 + investigation 4,000,000 + vouchers 500×1,200
assert e["response_cost"]["total_yen"] == 180000 + 1180000 + 4000000 + 600000, e["response_cost"]
PY

# ---- 8. the timeline verifies; the vault still runs on the shared database; its log verifies
"$MAMORI" incident timeline --id "$ID" --verify --format json > "$WORK/tl.json"
python3 - "$WORK/tl.json" <<'PY'
import json, sys
kinds = [e["kind"] for e in json.load(open(sys.argv[1]))]
assert kinds == ["open", "note", "scope", "scope", "scope", "facts", "assess", "docs",
                 "estimate"], kinds
PY
stop_server
start_server  # reopens meta.db, now holding the incident_ tables too
DEVS=$(admin devices list)
[ "$(json '[d["status"] for d in j["devices"] if d["id"] == '"$TANAKA_DEVICE"'][0]' <<<"$DEVS")" \
  = locked ] || fail "device $TANAKA_DEVICE is not locked after restart: $DEVS"
stop_server
"$MAMORI" audit verify --log "$AUDIT" --pubkey "$KEYS/audit_signing.pub" >/dev/null \
  || fail "the vault's audit log does not verify"
echo "incident vault e2e: OK (aware $AWARE, device d$TANAKA_DEVICE)"
