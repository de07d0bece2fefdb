#!/usr/bin/env bash
# Make sure PostgreSQL's server binaries are on this machine (the tests of the Postgres-backed
# Dagster instance start a throwaway server from them). Installs Debian's package when missing.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null || command -v initdb > /dev/null; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-postgres: PostgreSQL is not installed; run as root or: apt-get install postgresql" >&2
  exit 1
fi
echo "ensure-postgres: installing PostgreSQL (Debian package)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -qq
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends postgresql > /dev/null
