#!/usr/bin/env bash
# promtool (Prometheus's rule checker and rule unit tester) from Debian's `prometheus` package,
# extracted without installing or running the service: `apt-get download` + `dpkg -x`, then
# kept in .dev/tools/promtool.
#
#   scripts/promtool.sh ARGS...   run promtool with ARGS (fetching it first when needed)
#   scripts/promtool.sh --path    print its path (fetching it first when needed)
#
# PROMTOOL=/path/to/promtool uses that one; a promtool already on PATH is used as it is.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS="$ROOT/.dev/tools"

say() { printf 'promtool: %s\n' "$*" >&2; }
die() { printf 'promtool: %s\n' "$*" >&2; exit 1; }

fetch() {
  if [[ ! -f /etc/debian_version ]] || ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
    die "not on Debian: install Prometheus's promtool yourself and set PROMTOOL=/path/to/promtool"
  fi
  local apt_opts=()
  if [[ $(id -u) -eq 0 ]]; then
    apt_opts=(-o APT::Sandbox::User=root)  # root downloads into a folder _apt cannot write
    if ! apt-cache show prometheus >/dev/null 2>&1; then
      say "updating the package lists (apt-get update)"
      apt-get update -qq >/dev/null
    fi
  elif ! apt-cache show prometheus >/dev/null 2>&1; then
    die "Debian's package lists do not know 'prometheus': run 'sudo apt-get update', or set PROMTOOL"
  fi
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  say "fetching Debian's prometheus package for its promtool (not installing the service)"
  (cd "$tmp" && apt-get download -qq "${apt_opts[@]}" prometheus >/dev/null)
  dpkg -x "$tmp"/prometheus_*.deb "$tmp/root"
  mkdir -p "$TOOLS"
  install -m 755 "$tmp/root/usr/bin/promtool" "$TOOLS/promtool.$$"
  mv -f "$TOOLS/promtool.$$" "$TOOLS/promtool"  # atomic: a parallel run sees all or nothing
  rm -rf "$tmp"
}

locate() {
  if [[ -n "${PROMTOOL:-}" ]]; then
    [[ -x "$PROMTOOL" ]] || die "PROMTOOL=$PROMTOOL is not an executable file"
    echo "$PROMTOOL"
  elif command -v promtool >/dev/null; then
    command -v promtool
  else
    [[ -x "$TOOLS/promtool" ]] || fetch
    echo "$TOOLS/promtool"
  fi
}

tool=$(locate)
if [[ "${1:-}" == "--path" ]]; then
  echo "$tool"
else
  exec "$tool" "$@"
fi
