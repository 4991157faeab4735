#!/usr/bin/env bash
# ensure-npm.sh DIR PKG@VERSION [NPM-FLAG...]: install an npm package into
# DIR (npm install --prefix DIR) unless DIR/node_modules/PKG is there; the
# flags go to npm (--ignore-scripts for a package whose install scripts
# need its own development tools). Used by the
# Makefile so that `make test` has the npm packages the tests start (the
# mail tests' hoodiecrow-imap), in the same cache folder the tests look in.
set -euo pipefail
dir=$1
spec=$2
shift 2
name=${spec%@*}
[ -f "$dir/node_modules/$name/package.json" ] && exit 0
# A machine with its own Node.js keeps it; a fresh Debian gets Debian's
# (README: Go and make are all that must be there first).
command -v npm >/dev/null || "$(dirname "$0")/ensure-deb.sh" npm
command -v npm >/dev/null || { echo "ensure-npm: npm is needed to install $spec" >&2; exit 1; }
mkdir -p "$dir"
echo "ensure-npm: installing $spec into $dir" >&2
npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "$@" "$spec" >/dev/null
