#!/usr/bin/env bash
# Install the Node tooling of package-lock.json (buf) into node_modules/, after installing Node
# itself from Debian's packages when it is missing (as root on Debian; otherwise say what to do).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

if ! command -v npm >/dev/null; then
  if [[ $(id -u) -eq 0 && -f /etc/debian_version ]] && command -v apt-get >/dev/null; then
    echo "node: installing nodejs and npm (apt-get)" >&2
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  else
    echo "node: npm is needed for buf: apt-get install -y nodejs npm" >&2
    exit 1
  fi
fi
npm ci --no-audit --no-fund --loglevel=error
