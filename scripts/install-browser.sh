#!/bin/sh
# Installs what the browser test needs, and nothing else:
#
# * from Debian: `chromium` without its recommended packages, and
#   `fonts-dejavu-core` so the screenshots show text (Chromium itself
#   depends on no font);
# * from npm: the pinned `playwright-core`, into tests/browser/node_modules.
#   Playwright's own browser download is not used: the test launches
#   /usr/bin/chromium through `executablePath`.
#
# Run as root on Debian. Safe to run again: when everything is already
# there it only checks and returns.
#
# It upgrades nothing the browser does not require. Chromium's
# recommended packages pull in udev, which upgrades systemd, and apt then
# upgrades perl along the way; a test run has no business changing the
# machine's system that much. So the recommends stay out, nothing is ever
# upgraded with `apt-get upgrade`, and apt is asked first what it would
# do: an installed package it must upgrade because Chromium's own
# dependencies need a newer version is named before it happens.
set -eu

repo="$(cd "$(dirname "$0")/.." && pwd)"
browser_dir="$repo/tests/browser"
debian_packages="chromium fonts-dejavu-core"

missing=""
for package in $debian_packages; do
    if ! dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $package"
    fi
done

if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    # In a simulation, an upgrade shows as `Inst NAME [OLD VERSION] (NEW ...)`,
    # a new package as `Inst NAME (VERSION ...)`.
    # shellcheck disable=SC2086 # the package list is meant to split
    upgrades="$(apt-get install -s --no-install-recommends $missing | sed -n 's/^Inst \([^ ]*\) \[.*/\1/p')"
    if [ -n "$upgrades" ]; then
        echo "install-browser:$missing require newer versions of these installed packages:" >&2
        echo "$upgrades" | sed 's/^/    /' >&2
    fi
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends $missing
fi

if ! timeout 60 /usr/bin/chromium --headless --no-sandbox --disable-gpu --dump-dom 'data:text/html,<p>ok</p>' 2>/dev/null |
    grep -q '<p>ok</p>'; then
    echo "install-browser: /usr/bin/chromium is installed but cannot render a page headless" >&2
    exit 1
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
