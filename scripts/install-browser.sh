#!/bin/sh
# Installs what the browser test needs: Debian's Chromium and playwright-core.
#
# Run as root on Debian. Safe to run again: when everything is already there it
# only checks and returns. Playwright's own browser download is not used; the
# test launches /usr/bin/chromium through `executablePath`.
set -eu

repo="$(cd "$(dirname "$0")/.." && pwd)"
browser_dir="$repo/tests/browser"

if [ ! -x /usr/bin/chromium ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y chromium
fi

# Skip npm when the pinned playwright-core is already installed.
wanted="$(sed -n 's/.*"playwright-core": *"\([^"]*\)".*/\1/p' "$browser_dir/package.json")"
installed_pkg="$browser_dir/node_modules/playwright-core/package.json"
if [ -f "$installed_pkg" ] &&
    grep -q "\"version\": *\"$wanted\"" "$installed_pkg"; then
    exit 0
fi

cd "$browser_dir"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ -f package-lock.json ]; then
    npm ci --no-audit --no-fund
else
    npm install --no-audit --no-fund
fi
