#!/bin/sh
# Makes sure Debian's headless-capable Chromium is at /usr/bin/chromium, installing it with apt
# when it is missing (needs root). The HTML report test opens reports with it.
# Prints what it does; exits non-zero with a clear message when it cannot provide Chromium.
set -eu

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
  echo "ensure-chromium: $CHROMIUM present: $("$CHROMIUM" --version 2>/dev/null || echo 'version unknown')"
  exit 0
fi

fail() {
  echo "ensure-chromium: $1" >&2
  echo "ensure-chromium: install it by hand (as root: apt-get update && apt-get install -y --no-install-recommends chromium) and rerun." >&2
  exit 1
}

command -v apt-get >/dev/null 2>&1 || fail "$CHROMIUM is missing and apt-get is not available (not a Debian-like system)"
[ "$(id -u)" -eq 0 ] || fail "$CHROMIUM is missing and installing it needs root (running as uid $(id -u))"

# Another apt-get (another install running on this machine) holds the dpkg lock for a while: wait for it.
start=$(date +%s)
echo "ensure-chromium: $CHROMIUM is missing; running apt-get update"
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -q || fail "apt-get update failed (no network or no apt sources?)"
echo "ensure-chromium: running apt-get install -y --no-install-recommends chromium"
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends chromium || fail "apt-get install chromium failed"
[ -x "$CHROMIUM" ] || fail "apt-get install chromium succeeded but $CHROMIUM is still missing"
echo "ensure-chromium: installed $("$CHROMIUM" --version 2>/dev/null || echo chromium) in $(( $(date +%s) - start )) s"
