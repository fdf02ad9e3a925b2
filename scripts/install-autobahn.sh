#!/usr/bin/env bash
# Installs the Autobahn|Testsuite client (`wstest`) that scripts/autobahn.sh
# runs, into $AUTOBAHN_PREFIX (default /opt/duplex-autobahn).
#
# The suite is written for Python 2.7, which current Debian no longer
# ships. Where it comes from here:
#
#  1. python2.7 (and its headers and a C compiler, to build the suite's
#     wsaccel speedups) from Debian. When the machine's release has no
#     python2.7, the previous-but-one release, bullseye, which still has
#     2.7.18, is added as an apt source on the mirror the machine already
#     uses, pinned at priority 100: apt then takes from it only what the
#     current release lacks, and never upgrades anything from it.
#  2. virtualenv 20.21.1, into a Python 3 venv of its own. It is the last
#     virtualenv that can still make a Python 2.7 environment (it brings
#     pip 20.3.4 for it).
#  3. A Python 2.7 environment with exactly the packages pinned in
#     autobahn/requirements-py27.txt, from PyPI.
#
# Needs root the first time (apt). Safe to run again: once everything is in
# place it checks and returns in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${AUTOBAHN_PREFIX:-/opt/duplex-autobahn}
requirements=$PWD/autobahn/requirements-py27.txt
virtualenv_version=20.21.1
old_release=bullseye
say() { echo "install-autobahn: $*" >&2; }

# The pins and the virtualenv version, hashed: a stamp that changes when
# either does, so an edited requirements file means a reinstall.
wanted=$( (cat "$requirements"; echo "virtualenv $virtualenv_version") | sha256sum | cut -d' ' -f1)
stamp=$prefix/installed
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] &&
    "$prefix/py27/bin/python" -c 'import autobahntestsuite, wsaccel' 2>/dev/null; then
    exit 0
fi

# --- 1. Python 2.7 from Debian ---------------------------------------------
installed() { dpkg-query -W -f '${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
debian_packages=(python2.7 python2.7-dev gcc libc6-dev)
missing=()
for package in "${debian_packages[@]}"; do
    installed "$package" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { say "run as root to install ${missing[*]}"; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    has_candidate() { apt-cache policy python2.7 2>/dev/null | grep -q 'Candidate: [0-9]'; }
    if ! has_candidate; then
        # The mirror the machine uses for its own release: the first URI of
        # a deb822 source, or of a one-line `deb` entry.
        mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's/^URIs: *\([^ ]*\).*/\1/p' | head -n1)
        if [ -z "$mirror" ]; then
            mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
                awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }')
        fi
        [ -n "$mirror" ] || { say "no Debian mirror found in the apt sources"; exit 1; }
        say "python2.7 is not in this Debian release: adding $old_release from $mirror at priority 100"
        cat >/etc/apt/sources.list.d/duplex-$old_release.sources <<SOURCES
# Python 2.7 for the Autobahn|Testsuite (scripts/install-autobahn.sh).
Types: deb
URIs: $mirror
Suites: $old_release
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
Check-Valid-Until: no
SOURCES
        cat >/etc/apt/preferences.d/duplex-$old_release <<PIN
# Only what the current release lacks comes from $old_release.
Package: *
Pin: release n=$old_release
Pin-Priority: 100
PIN
        apt-get update -qq
        has_candidate || { say "python2.7 still cannot be installed"; exit 1; }
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
/usr/bin/python2.7 -c 'import ssl, zlib' || { say "/usr/bin/python2.7 does not work"; exit 1; }

# --- 2. virtualenv, in a Python 3 venv -------------------------------------
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
mkdir -p "$prefix"
boot=$prefix/bootstrap
if [ "$("$boot/bin/python" -c 'import virtualenv; print(virtualenv.__version__)' 2>/dev/null)" != "$virtualenv_version" ]; then
    rm -rf "$boot"
    if ! /usr/bin/python3 -m venv "$boot" 2>/dev/null; then
        apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
        rm -rf "$boot"
        /usr/bin/python3 -m venv "$boot"
    fi
    "$boot/bin/python" -m pip install -q "virtualenv==$virtualenv_version"
fi

# --- 3. the suite, in a Python 2.7 environment ----------------------------
py27=$prefix/py27
if ! "$py27/bin/python" -c 'import sys; assert sys.version_info[:2] == (2, 7)' 2>/dev/null; then
    rm -rf "$py27"
    VIRTUALENV_OVERRIDE_APP_DATA=$boot/app-data "$boot/bin/virtualenv" -q --no-periodic-update -p /usr/bin/python2.7 "$py27"
fi
# pip on Python 2.7 trusts the system's CA bundle only when told.
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    export PIP_CERT=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
fi
log=$prefix/pip.log
if ! "$py27/bin/pip" install --no-deps --prefer-binary -r "$requirements" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    say "pip install failed; the whole log is in $log"
    exit 1
fi
"$py27/bin/python" - <<'CHECK'
import autobahntestsuite, autobahn
from autobahn.websocket.utf8validator import Utf8Validator
assert "wsaccel" in Utf8Validator.__module__, "wsaccel did not build"
CHECK
echo "$wanted" >"$stamp"
say "installed autobahntestsuite in $py27"
