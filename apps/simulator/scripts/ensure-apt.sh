#!/bin/sh
# ensure-apt.sh BINARY PACKAGE: makes sure BINARY (e.g. /usr/bin/chromium) is there, installing
# Debian's PACKAGE (chromium, redis-server) with apt when it is missing (needs root). Tests that
# need a real Chromium or Redis run it first. Prints what it does; exits non-zero with a clear
# message when it cannot provide the binary.
set -eu

BINARY=$1
PACKAGE=$2

if [ -x "$BINARY" ]; then
  echo "ensure-apt: $BINARY present: $("$BINARY" --version 2>/dev/null || echo 'version unknown')"
  exit 0
fi

fail() {
  echo "ensure-apt: $1" >&2
  echo "ensure-apt: install it by hand (as root: apt-get update && apt-get install -y --no-install-recommends $PACKAGE) and rerun." >&2
  exit 1
}

command -v apt-get >/dev/null 2>&1 || fail "$BINARY is missing and apt-get is not available (not a Debian-like system)"
[ "$(id -u)" -eq 0 ] || fail "$BINARY is missing and installing it needs root (running as uid $(id -u))"

# Another apt-get (another install running on this machine) holds the dpkg lock for a while: wait for it.
start=$(date +%s)
echo "ensure-apt: $BINARY is missing; running apt-get update"
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -q || fail "apt-get update failed (no network or no apt sources?)"
echo "ensure-apt: running apt-get install -y --no-install-recommends $PACKAGE"
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "$PACKAGE" || fail "apt-get install $PACKAGE failed"
[ -x "$BINARY" ] || fail "apt-get install $PACKAGE succeeded but $BINARY is still missing"
echo "ensure-apt: installed $("$BINARY" --version 2>/dev/null || echo "$PACKAGE") in $(( $(date +%s) - start )) s"
