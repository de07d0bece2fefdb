#!/usr/bin/env bash
# Make sure a Java 17+ runtime is on this machine: the Spark target runs pyspark with a local JVM
# (`method: session`). Installs Debian's headless JRE when missing.
set -euo pipefail
if command -v java > /dev/null; then
  major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
  if [ "${major:-0}" -ge 17 ]; then
    exit 0
  fi
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-java: Java 17+ is not installed; run as root or: apt-get install openjdk-17-jre-headless" >&2
  exit 1
fi
echo "ensure-java: installing Java 17 (Debian package)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -qq
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends openjdk-17-jre-headless > /dev/null
