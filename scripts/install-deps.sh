#!/usr/bin/env bash
# Installs the Debian packages mamori builds, tests and runs with.
# Idempotent: packages already present are skipped, so a second run is quick.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev clang-format
  # detection
  libvectorscan-dev libarchive-dev libpoppler-cpp-dev poppler-utils libuchardet-dev
  libicu-dev libmecab-dev mecab mecab-ipadic-utf8 zlib1g-dev
  # crypto, storage, serving
  libsodium-dev libssl-dev libboost-dev libboost-system-dev libsqlite3-dev sqlite3
  libpwquality-dev liboath-dev oathtool openssl
  # mail, documents
  libmilter-dev libhpdf-dev fonts-noto-cjk
  # utilities
  libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev libyaml-cpp-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev ripgrep zip unzip curl python3 file
)

# Components list extra packages in scripts/deps/<component>.txt, one per line.
deps_dir="$(dirname "$0")/deps"
if [ -d "$deps_dir" ]; then
  while read -r p; do
    [ -n "$p" ] && PACKAGES+=("$p")
  done < <(cat "$deps_dir"/*.txt 2>/dev/null | sed 's/#.*//' | tr -s ' \t' '\n' | grep -v '^$' || true)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# Postfix comes in for the mail tests: tell its installer not to configure a
# system mail server (tests run private instances on loopback).
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
