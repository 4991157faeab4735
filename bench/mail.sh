#!/usr/bin/env bash
# bench/mail.sh: the Google Mail connector benchmark step of `make bench`
# (make -C bench all), which rewrites the generated part of the "Google
# Mail connector" section of RESULTS.md. Needs Dovecot (dovecot-core,
# dovecot-imapd), which it installs when missing, and runs it unprivileged
# on 127.0.0.1 (cmd/mailbench).
#
# Environment: QUICK=1 (2000 messages, one run, results to
# out/RESULTS.quick.md), MAIL_N (default 10000), MAIL_RUNS (default 5).
set -euo pipefail
cd "$(dirname "$0")"
../scripts/ensure-deb.sh dovecot-core dovecot-imapd
mkdir -p out/bin
go build -trimpath -o out/bin/mailbench ./cmd/mailbench
if [ -n "${QUICK:-}" ]; then
	out/bin/mailbench -n 2000 -runs 1 -results out/RESULTS.quick.md >/dev/null # its block; the other steps' blocks are kept
else
	out/bin/mailbench -n "${MAIL_N:-10000}" -runs "${MAIL_RUNS:-5}" -results RESULTS.md
fi
