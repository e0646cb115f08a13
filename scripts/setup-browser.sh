#!/usr/bin/env bash
# Set-up for the real-browser tests (idempotent): Debian's chromium, and playwright-core
# (pinned in tests/browser/package-lock.json) to drive it. Never downloads a browser build.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
    else
        echo "setup-browser: /usr/bin/chromium is missing; install Debian's chromium (as root: apt-get install chromium)" >&2
        exit 1
    fi
fi

if [ ! -f tests/browser/node_modules/.package-lock.json ] ||
    [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
