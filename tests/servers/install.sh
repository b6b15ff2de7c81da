#!/usr/bin/env bash
# Installs the real servers the SMTP tests run, into the checkout (nothing system-wide):
#   .venv/                 Python venv with aiosmtpd (an SMTP server that stores what it gets)
#   .tools/postfix/        Postfix unpacked from Debian's package, for smtp-sink (fault injection)
# Safe to run again; it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! .venv/bin/python -c 'import aiosmtpd' 2>/dev/null; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet 'aiosmtpd==1.4.6'
fi

if [ ! -x .tools/postfix/usr/sbin/smtp-sink ]; then
    mkdir -p .tools/download
    # A fresh machine may have no package lists yet: fetch them once, then try again.
    (cd .tools/download && { apt-get download postfix >/dev/null \
        || { apt-get update >/dev/null && apt-get download postfix >/dev/null; }; })
    dpkg -x .tools/download/postfix_*.deb .tools/postfix
    rm -rf .tools/download
fi
