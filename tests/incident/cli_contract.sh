#!/usr/bin/env bash
# Runs every scenario's facts through `mamori incident assess --facts F --format json`
# (the machine-readable contract) and checks the expectation, plus exit 2 on bad input.
# usage: cli_contract.sh MAMORI_BINARY SOURCE_DIR
set -euo pipefail
MAMORI="$1"; SRC="$2"
WORK="$(mktemp -d /tmp/incident_cli.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
python3 - "$MAMORI" "$SRC" "$WORK" <<'PY'
import json, os, subprocess, sys
mamori, src, work = sys.argv[1:4]
def subset(want, got, path):
    if isinstance(want, dict):
        assert isinstance(got, dict), f"{path}: want object, got {got!r}"
        for k, v in want.items():
            assert k in got, f"{path}.{k} missing"
            subset(v, got[k], f"{path}.{k}")
    else:
        assert want == got, f"{path}: want {want!r}, got {got!r}"
sdir = os.path.join(src, "tests/incident/scenarios")
n = 0
for name in sorted(os.listdir(sdir)):
    s = json.load(open(os.path.join(sdir, name)))
    facts = os.path.join(work, name)
    json.dump(s["facts"], open(facts, "w"), ensure_ascii=False)
    cmd = [mamori, "incident", "assess", "--facts", facts, "--format", "json"]
    for d in s.get("rules", []):
        cmd += ["--rules", os.path.join(src, "rules/incident") if d == "default" else os.path.join(src, d)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode == 0, f"{name}: exit {p.returncode}: {p.stderr}"
    subset(s["expected"], json.loads(p.stdout), name)
    n += 1
assert n >= 25, n
# Bad inputs: exit 2, and the message names the field.
bad = {
    "persons": '{"aware_at":"2026-04-01T10:00:00+09:00","sector":"private","persons":-3,"data_items":[],"malicious_suspected":false,"publicly_viewable":false,"encryption":null,"processor_notified_controller":false}',
    "data_items[0]": '{"aware_at":"2026-04-01T10:00:00+09:00","sector":"private","persons":3,"data_items":["medcal"],"malicious_suspected":false,"publicly_viewable":false,"encryption":null,"processor_notified_controller":false}',
    "encryption.key_exposed": '{"aware_at":"2026-04-01T10:00:00+09:00","sector":"private","persons":3,"data_items":[],"malicious_suspected":false,"publicly_viewable":false,"encryption":{"algorithm":"AES-256-GCM"},"processor_notified_controller":false}',
    "not valid JSON": '{"aware_at": ',
    "2022-04-01": '{"aware_at":"2021-04-01T10:00:00+09:00","sector":"private","persons":3,"data_items":[],"malicious_suspected":false,"publicly_viewable":false,"encryption":null,"processor_notified_controller":false}',
}
for needle, text in bad.items():
    f = os.path.join(work, "bad.json")
    open(f, "w").write(text)
    p = subprocess.run([mamori, "incident", "assess", "--facts", f, "--format", "json"], capture_output=True, text=True)
    assert p.returncode == 2, f"{needle}: exit {p.returncode}"
    assert needle in p.stderr, f"{needle} not in {p.stderr!r}"
    assert p.stdout == "", p.stdout
print(f"incident CLI contract: {n} scenarios OK")
PY
