#!/bin/sh
# Installs what the socket.io tests need, from npm, pinned in
# tests/socketio/package.json (and its package-lock.json), into
# tests/socketio/node_modules:
#
# * socket.io-client: the official client, which the tests drive from Node,
#   and whose browser bundle (dist/socket.io.js) the tutorial's page loads;
# * jquery, the version the tutorial's page asks a CDN for, so the browser
#   test can answer that one URL offline.
#
# Needs node and npm. Safe to run again: when the pinned versions are
# already there it only checks and returns.
set -eu

repo="$(cd "$(dirname "$0")/.." && pwd)"
dir="$repo/tests/socketio"

installed() {
    node -e '
const fs = require("fs");
const want = require(process.argv[1] + "/package.json").dependencies;
for (const [name, version] of Object.entries(want)) {
  const file = process.argv[1] + "/node_modules/" + name + "/package.json";
  if (!fs.existsSync(file) || JSON.parse(fs.readFileSync(file)).version !== version) process.exit(1);
}' "$dir" 2>/dev/null
}

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "install-socketio: node and npm are missing; on Debian: apt-get install --no-install-recommends nodejs npm" >&2
    exit 1
fi
if installed; then
    exit 0
fi
cd "$dir"
npm ci --no-audit --no-fund
if ! installed; then
    echo "install-socketio: the pinned packages did not install into $dir/node_modules" >&2
    exit 1
fi
echo "install-socketio: socket.io-client and jquery (pinned) in $dir/node_modules"
