#!/usr/bin/env bash
# Installs the real servers, the browser and the checkers the tests run. Safe to run again;
# it skips what is already there.
#   .venv/                 Python venv with aiosmtpd (an SMTP server that stores what it gets)
#   .tools/postfix/        Postfix unpacked from Debian's package, for smtp-sink (fault injection)
#   chromium, chromedriver Debian's packages, system-wide (the page tests drive them)
#   .tools/prometheus/     Prometheus unpacked from Debian's package, for promtool (no daemon)
#   systemd-analyze        Debian's systemd, system-wide (usually there already; no daemon is
#                          started: the unit tests run it offline)
#   .tools/validators/     Python venv with kubernetes-validate, checkov and prometheus-client
#                          (its OpenMetrics parser), the checkers the deployment tests run, and
#                          check-jsonschema (with SchemaStore's GitHub workflow schema inside)
#   shellcheck             Debian's package, system-wide, for the workflow recipe's scripts
set -euo pipefail
cd "$(dirname "$0")/../.."

# A fresh machine may have no package lists yet: fetch them once, then try again.
apt() { "$@" >/dev/null 2>&1 || { apt-get update >/dev/null && "$@" >/dev/null; }; }

if ! .venv/bin/python -c 'import aiosmtpd' 2>/dev/null; then
    # Debian's python3 makes venvs only with python3-venv installed.
    if ! python3 -m venv .venv 2>/dev/null; then
        rm -rf .venv
        apt env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv
        python3 -m venv .venv
    fi
    .venv/bin/pip install --quiet 'aiosmtpd==1.4.6'
fi

if [ ! -x .tools/postfix/usr/sbin/smtp-sink ]; then
    mkdir -p .tools/download
    (cd .tools/download && apt apt-get download postfix)
    dpkg -x .tools/download/postfix_*.deb .tools/postfix
    rm -rf .tools/download
fi

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    apt env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver
fi

if [ ! -x /usr/bin/systemd-analyze ] || [ ! -x /usr/bin/man ]; then
    apt env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends systemd man-db
fi

if [ ! -x .tools/prometheus/usr/bin/promtool ]; then
    mkdir -p .tools/download
    (cd .tools/download && apt apt-get download prometheus)
    dpkg -x .tools/download/prometheus_*.deb .tools/prometheus
    rm -rf .tools/download
fi

if ! .tools/validators/bin/python -c 'import kubernetes_validate, checkov, prometheus_client' 2>/dev/null; then
    rm -rf .tools/validators
    python3 -m venv .tools/validators
    .tools/validators/bin/pip install --quiet 'kubernetes-validate==1.37.0' 'checkov==3.3.30' 'prometheus-client==0.26.0'
fi
if [ ! -x .tools/validators/bin/check-jsonschema ]; then
    .tools/validators/bin/pip install --quiet 'check-jsonschema==0.39.0'
fi

if [ ! -x /usr/bin/shellcheck ]; then
    apt env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends shellcheck
fi
