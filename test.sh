#!/usr/bin/env bash
# Runs every check and test of the workspace. Installs what the tests need with apt-get when
# it is missing (Debian; run as root or with sudo available), then: cargo fmt --check,
# cargo clippy -D warnings, cargo test --workspace.
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages the tests use, as "command:package" pairs.
NEEDED=(
  "cc:gcc"
  "pkg-config:pkg-config"
  "espeak-ng:espeak-ng"
  "sipp:sip-tester"
  "baresip:baresip-core"
)

missing=()
for pair in "${NEEDED[@]}"; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
done
if ((${#missing[@]})); then
  echo "test.sh: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
