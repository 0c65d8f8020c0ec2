#!/usr/bin/env bash
# Install the Node packages of a package-lock.json into its node_modules/: the root's (buf) by
# default, or a folder's (`scripts/node.sh clients/ts`: the TypeScript client, which brings its
# own Node 24 as the `node` package), after installing Node itself from Debian's packages when
# it is missing (as root on Debian; otherwise say what to do).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT/${1:-.}"

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
