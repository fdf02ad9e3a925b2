#!/bin/sh
# Installs what the browser test needs, and nothing else:
#
# * from Debian: `chromium` and `firefox-esr` without their recommended
#   packages, and `fonts-dejavu-core` so the screenshots show text
#   (Chromium itself depends on no font);
# * from npm: the pinned `puppeteer-core`, into tests/browser/node_modules.
#   It drives Chromium over the DevTools protocol and Firefox over
#   WebDriver BiDi, which Firefox speaks itself: no driver binary (Debian
#   has no geckodriver), and no browser download (PUPPETEER_SKIP_DOWNLOAD):
#   the test launches /usr/bin/chromium and /usr/bin/firefox-esr.
#
# Run as root on Debian. Safe to run again: when everything is already
# there it only checks and returns. If a browser cannot be installed or
# cannot render a page headless, it says which and fails: the browser test
# would fail anyway, and saying so here is clearer.
#
# It upgrades nothing the browsers do not require. Chromium's recommended
# packages pull in udev, which upgrades systemd, and apt then upgrades
# perl along the way; a test run has no business changing the machine's
# system that much. So the recommends stay out, nothing is ever upgraded
# with `apt-get upgrade`, and apt is asked first what it would do: an
# installed package it must upgrade because a browser's own dependencies
# need a newer version is named before it happens.
set -eu

repo="$(cd "$(dirname "$0")/.." && pwd)"
browser_dir="$repo/tests/browser"
debian_packages="chromium firefox-esr fonts-dejavu-core"

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
    if ! apt-get install -y --no-install-recommends $missing; then
        echo "install-browser: apt could not install$missing; the browser test cannot run without them" >&2
        exit 1
    fi
fi

if ! timeout 60 /usr/bin/chromium --headless --no-sandbox --disable-gpu --dump-dom 'data:text/html,<p>ok</p>' 2>/dev/null |
    grep -q '<p>ok</p>'; then
    echo "install-browser: /usr/bin/chromium is installed but cannot render a page headless" >&2
    exit 1
fi
# Firefox prints its version without starting a window; the page itself is
# rendered by the test, which says what went wrong if it cannot start.
if ! timeout 60 /usr/bin/firefox-esr --headless --version >/dev/null 2>&1; then
    echo "install-browser: /usr/bin/firefox-esr is installed but does not run" >&2
    exit 1
fi

# Skip npm when the pinned puppeteer-core is already installed.
wanted="$(sed -n 's/.*"puppeteer-core": *"\([^"]*\)".*/\1/p' "$browser_dir/package.json")"
installed_pkg="$browser_dir/node_modules/puppeteer-core/package.json"
if [ -f "$installed_pkg" ] &&
    grep -q "\"version\": *\"$wanted\"" "$installed_pkg"; then
    exit 0
fi

cd "$browser_dir"
export PUPPETEER_SKIP_DOWNLOAD=1
if [ -f package-lock.json ]; then
    npm ci --no-audit --no-fund
else
    npm install --no-audit --no-fund
fi
