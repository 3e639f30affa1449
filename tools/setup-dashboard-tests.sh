#!/usr/bin/env bash
# Install the dashboard's browser-test tool (playwright-core, pinned in
# tests/dashboard/package-lock.json) into tests/dashboard/node_modules. It
# drives Debian's chromium (scripts/setup-host.sh installs it); nothing
# here downloads a browser.
set -euo pipefail
cd "$(dirname "$0")/../tests/dashboard"
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
