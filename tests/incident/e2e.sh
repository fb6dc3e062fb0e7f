#!/usr/bin/env bash
# End-to-end: a vault user downloads 1,200 customer records to a laptop that is
# later reported lost. open -> note -> scope -> assess -> docs -> estimate must
# produce a complete PPC draft with 1,200 people and the right deadlines.
# usage: e2e.sh MAMORI_BINARY MAKE_AUDIT_LOG_BINARY SOURCE_DIR
set -euo pipefail
MAMORI="$1"; MAKELOG="$2"; SRC="$3"
WORK="$(mktemp -d /tmp/incident_e2e.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
export MAMORI_DB="$WORK/var/mamori.db"
fail() { echo "FAIL: $*" >&2; exit 1; }
expect() {  # expect "description" "needle" "haystack"
  grep -qF -- "$2" <<<"$3" || fail "$1: '$2' not found in: ${3:0:3000}"
}

"$MAKELOG" "$WORK"
# Every incident step is also mirrored into a shared, signed audit log.
"$MAMORI" audit keygen --out "$WORK/keys" >/dev/null
export MAMORI_AUDIT_LOG="$WORK/shared_audit.log" MAMORI_AUDIT_KEY="$WORK/keys/audit_signing.key"
[ -s "$WORK/audit.log" ] && [ -s "$WORK/audit.jsonl" ] || fail "audit log not written"

# 1. open: the laptop was reported lost on 2026-12-20 at 10:00 JST (given in UTC here).
ID=$("$MAMORI" incident open --actor compliance --title "顧客名簿を保存したノートPC（laptop-042）の紛失" \
      --aware-at 2026-12-20T01:00:00Z)
[ "$ID" = "1" ] || fail "open returned '$ID'"
"$MAMORI" incident note --actor compliance --id "$ID" --who "営業部の従業者1名" \
  --what "社外でノートPCを紛失したと報告" --when "2026-12-19 夜" --where "電車内" \
  --how "置き忘れ" --why "持ち出し時の管理不備" >/dev/null

# 2. scope through the audit library's reader (the live log) ...
OUT=$("$MAMORI" incident scope --actor compliance --id "$ID" --audit-log "$WORK/audit.log" \
      --user tanaka --device laptop-042 --until 2026-12-20T10:00:00+09:00 --format json)
expect "scope (log) persons" '"persons": 1200' "$OUT"
expect "scope (log) objects" '"objects": 3' "$OUT"
expect "scope (log) method" '"person_method": "sum"' "$OUT"
# ... and through the JSONL export: the same answer.
OUT=$("$MAMORI" incident scope --actor compliance --id "$ID" --audit-jsonl "$WORK/audit.jsonl" \
      --user tanaka --device laptop-042 --until 2026-12-20T10:00:00+09:00 --format json)
expect "scope (jsonl) persons" '"persons": 1200' "$OUT"
expect "scope (jsonl) items" '"address"' "$OUT"
"$MAMORI" incident facts --actor compliance --id "$ID" \
  --narrative organization=株式会社まもり商事 \
  --narrative "contact=お客様相談窓口 0120-000-000（平日9時～17時）" \
  --narrative cause=従業者が顧客名簿を保存したノートPCを社外で紛失したため \
  --narrative "secondary_damage=現時点で二次被害は確認されていません" \
  --narrative prevention=端末の暗号化と持ち出し制限の徹底 >/dev/null

# 3. assess on the stored facts: 規則7条4号, 速報 12/23-12/25, 確報 2027-01-18.
OUT=$("$MAMORI" incident assess --id "$ID" --format json)
python3 - "$OUT" <<'PY'
import json, sys
a = json.loads(sys.argv[1])
ap = a["appi"]
assert ap["report_required"] is True, ap
assert ap["triggers"] == [4], ap
assert ap["exempt"] is None, ap
assert ap["preliminary_due"] == {"from": "2026-12-23", "to": "2026-12-25"}, ap
assert ap["final_due"] == "2027-01-18", ap
assert ap["notify_individuals"] is True, ap
assert a["my_number"]["report_required"] is False, a["my_number"]
assert any("規則7条4号" in r for r in a["reasons"]), a["reasons"]
PY

# 4. docs: PPC draft with 1,200 people and the deadlines, in md, html and pdf.
"$MAMORI" incident docs --actor compliance --id "$ID" --out "$WORK/docs" >/dev/null
for f in ppc_report notice_individuals public_notice call_centre_qa ipa_sharing; do
  for ext in md html pdf; do [ -s "$WORK/docs/$f.$ext" ] || fail "missing $f.$ext"; done
done
MD=$(cat "$WORK/docs/ppc_report.md")
for item in "一 概要" "二 漏えい等が発生し、又は発生したおそれがある個人データの項目" \
  "三 漏えい等が発生し、又は発生したおそれがある個人データに係る本人の数" "四 原因" \
  "五 二次被害又はそのおそれの有無及びその内容" "六 本人への対応の実施状況" "七 公表の実施状況" \
  "八 再発防止のための措置" "九 その他参考となる事項"; do
  expect "ppc_report.md item" "$item" "$MD"
done
expect "ppc_report.md persons" "1,200人" "$MD"
expect "ppc_report.md final due" "2027年1月18日" "$MD"
expect "ppc_report.md organisation" "株式会社まもり商事" "$MD"
if grep -q "tanaka" "$WORK"/docs/*.md "$WORK"/docs/*.html; then fail "documents name the user"; fi
PDF=$(pdftotext -enc UTF-8 "$WORK/docs/ppc_report.pdf" - 2>/dev/null)
expect "ppc_report.pdf persons" "1,200人" "$PDF"
expect "ppc_report.pdf final due" "2027年1月18日" "$PDF"
expect "ppc_report.pdf preliminary" "2026年12月23日" "$PDF"
expect "ppc_report.pdf item 9" "その他参考となる事項" "$PDF"
NOTICE=$(pdftotext -enc UTF-8 "$WORK/docs/notice_individuals.pdf" - 2>/dev/null)
expect "notice pdf" "二次被害" "$NOTICE"

# 5. estimate: 氏名・住所・電話・メール・生年月日 -> x1 y1 (2) × 6 × 1 × 1 = 6,000円/人 × 1,200 = 7,200,000円.
OUT=$("$MAMORI" incident estimate --id "$ID" --format json)
python3 - "$OUT" <<'PY'
import json, sys
e = json.loads(sys.argv[1])
jo = e["jo_model"]
assert jo["per_person_yen"] == 6000, jo
assert jo["total_yen"] == 7200000, jo
assert e["response_cost"]["total_yen"] == 180000 + 1180000 + 4000000 + 600000, e["response_cost"]
PY

# 6. every step is on the append-only timeline, and the chain verifies.
"$MAMORI" incident timeline --id "$ID" --verify --format json > "$WORK/tl.json"
python3 - "$WORK/tl.json" <<'PY'
import json, sys
kinds = [e["kind"] for e in json.load(open(sys.argv[1]))]
assert kinds == ["open", "note", "scope", "scope", "facts", "assess", "docs", "estimate"], kinds
PY

# The shared audit log verifies and holds one incident record per step.
"$MAMORI" audit verify --log "$MAMORI_AUDIT_LOG" --pubkey "$WORK/keys/audit_signing.pub" >/dev/null \
  || fail "shared audit log does not verify"
N=$("$MAMORI" audit export --log "$MAMORI_AUDIT_LOG" --component incident | grep -c '"action":"incident\.')
[ "$N" = "8" ] || fail "shared audit log has $N incident records, want 8"

# A large scope still fits in one timeline event: the object list is bounded by
# bytes and the rest is counted (3,000 objects, each with many event ids).
python3 - "$WORK/big.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(3000):
        for k in range(3):
            f.write(json.dumps({"time": "2026-12-18T01:00:00Z", "component": "vault",
                                "event_id": "E%08d-%d" % (i, k), "user": "u", "device": "d2",
                                "action": "get", "object": "%032x" % i, "result": "allow",
                                "labels": {"scanned": True, "types": {"jp.phone": 2},
                                           "individuals": 2}}) + "\n")
PY
BIGDB="$WORK/big.db"
MAMORI_DB="$BIGDB" MAMORI_AUDIT_LOG= "$MAMORI" incident open --title big --aware-at 2026-12-20T10:00:00+09:00 >/dev/null
MAMORI_DB="$BIGDB" MAMORI_AUDIT_LOG= "$MAMORI" incident scope --id 1 --audit-jsonl "$WORK/big.jsonl" \
  --format json > "$WORK/big_scope.json"
python3 - "$WORK/big_scope.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
assert s["objects"] == 3000 and s["persons"] == 6000, s
assert 0 < s["objects_listed"] < 3000 and s["objects_listed"] + s["objects_not_listed"] == 3000, s
PY

# 7. the contract on bad input: exit 2 and the field to fix.
echo '{"aware_at": "2026-12-20T10:00:00", "sector": "private"}' > "$WORK/bad.json"
set +e
ERR=$("$MAMORI" incident assess --facts "$WORK/bad.json" --format json 2>&1); RC=$?
set -e
[ "$RC" = "2" ] || fail "bad facts: exit $RC, want 2"
expect "bad facts message" "aware_at" "$ERR"
echo "incident e2e: OK"
