#!/usr/bin/env bash
# Make sure a headless-capable Chromium is on this machine (the browser test of the backfill admin
# and the screenshots of docs/backfills.md drive it). Installs Debian's `chromium` when missing.
# Prints the path of the browser on stdout.
set -euo pipefail
for name in chromium chromium-browser google-chrome; do
  if command -v "$name" > /dev/null; then
    command -v "$name"
    exit 0
  fi
done
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-chromium: Chromium is not installed; run as root or: apt-get install chromium" >&2
  exit 1
fi
echo "ensure-chromium: installing Chromium (Debian package)" >&2
export DEBIAN_FRONTEND=noninteractive
# Another installer (e.g. scripts/ensure-postgres.sh) may hold the dpkg lock: wait for it.
apt-get -o DPkg::Lock::Timeout=300 update -qq
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends chromium fonts-liberation > /dev/null
command -v chromium
