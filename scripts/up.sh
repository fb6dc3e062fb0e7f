#!/usr/bin/env bash
# `make up`: starts the mamori vault (issue 4).
# On the first run it creates a dev CA, certificates and keys under var/ and prints
# the one-time enrolment token of the first admin. There are no default passwords.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${MAMORI_BIN:-./build/src/cli/mamori}
DATA=${MAMORI_VAULT_DATA:-var/vault}
KEYS=${MAMORI_VAULT_KEYS:-var/keys}
LISTEN=${MAMORI_VAULT_LISTEN:-127.0.0.1:8443}
PORT=${LISTEN##*:}
mkdir -p var

if [ ! -f "$DATA/meta.db" ]; then
  echo "mamori: initialising a new vault in $DATA (keys in $KEYS)"
  "$BIN" serve --init --data "$DATA" --keys "$KEYS"
  FIRST=1
else
  FIRST=0
fi

if [ -f var/vault.pid ] && kill -0 "$(cat var/vault.pid)" 2>/dev/null; then
  echo "mamori: the vault is already running (pid $(cat var/vault.pid))"
else
  nohup "$BIN" serve --data "$DATA" --keys "$KEYS" --listen "$LISTEN" \
    >var/vault.out 2>&1 &
  echo $! >var/vault.pid
  for _ in $(seq 1 300); do
    if curl -sf --cacert "$DATA/pki/ca.crt" "https://127.0.0.1:$PORT/v1/health" >/dev/null 2>&1; then
      break
    fi
    if ! kill -0 "$(cat var/vault.pid)" 2>/dev/null; then
      echo "mamori: the vault failed to start:" >&2
      cat var/vault.out >&2
      exit 2
    fi
    sleep 0.2
  done
  echo "mamori: vault started (pid $(cat var/vault.pid), log var/vault.out, stop: kill \$(cat var/vault.pid))"
fi

cat <<MSG

Connect:   https://127.0.0.1:$PORT   (CA certificate: $DATA/pki/ca.crt)
First admin, on this machine:
  $BIN enroll --server https://127.0.0.1:$PORT --ca $DATA/pki/ca.crt --user admin --token <TOKEN>
  $BIN login
MSG
if [ "$FIRST" = 0 ]; then
  echo "The first-admin token was printed when the vault was created. For a new one:"
  echo "  $BIN serve --data $DATA --keys $KEYS --new-admin-token"
fi
echo "Docs: docs/vault.md (use), docs/api.yaml (API), docs/formats.md (on-disk formats)"
