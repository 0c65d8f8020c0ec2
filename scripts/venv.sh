#!/usr/bin/env bash
# Create .venv and install the project with its dev extra, pinned by constraints.txt.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

python=""
for candidate in python3.11 python3.12 python3.13 python3; do
  if command -v "$candidate" >/dev/null &&
    "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    python=$candidate
    break
  fi
done
if [[ -z "$python" ]]; then
  echo "venv: Python 3.11 or newer is needed: apt-get install -y python3 python3-venv" >&2
  exit 1
fi
if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
  if [[ $(id -u) -eq 0 && -f /etc/debian_version ]]; then
    apt-get install -y -qq python3-venv >/dev/null
  else
    echo "venv: the venv module is missing: apt-get install -y python3-venv" >&2
    exit 1
  fi
fi

[[ -x .venv/bin/python ]] || "$python" -m venv .venv
.venv/bin/python -m pip install -q -c constraints.txt -e '.[dev]'
