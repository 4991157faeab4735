#!/usr/bin/env bash
# ensure-deb.sh PKG...: install the Debian packages that are missing.
# Used by the Makefile so that `make test` works on a fresh Debian machine
# with only Go and make installed. Needs root (or sudo) only when something is missing.
set -euo pipefail
missing=()
for p in "$@"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "ensure-deb: need root to install: ${missing[*]}" >&2; exit 1; }
	SUDO="sudo"
fi
echo "ensure-deb: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
