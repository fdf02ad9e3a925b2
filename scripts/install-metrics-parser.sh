#!/bin/sh
# Installs what the /metrics test needs: the Prometheus project's own Python
# client, whose text parser reads what `GET /metrics` writes. Pinned, and into
# a virtual environment under target/, so nothing outside the project changes.
#
# Needs python3 with its venv module; on Debian without it, python3-venv is
# installed (without recommends). Safe to run again: when the pinned version
# is already there it only checks and returns.
set -eu

repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="$repo/target/metrics-venv"
version="0.26.0"

installed() {
    "$venv/bin/python" -c "
import sys
from importlib.metadata import version
sys.exit(version('prometheus-client') != '$version')
" 2>/dev/null
}

if installed; then
    exit 0
fi

if ! command -v python3 >/dev/null; then
    echo "install-metrics-parser: python3 is missing; on Debian: apt-get install --no-install-recommends python3 python3-venv" >&2
    exit 1
fi
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends python3-venv
fi

rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "prometheus-client==$version"
if ! installed; then
    echo "install-metrics-parser: prometheus-client $version did not install into $venv" >&2
    exit 1
fi
echo "install-metrics-parser: prometheus-client $version in $venv"
