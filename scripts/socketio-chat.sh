#!/bin/sh
# Lays out the tutorials' socket.io chat as a folder for `--static`:
#
#   scripts/socketio-chat.sh DIR        # then: cargo run --release -- --static DIR
#
# DIR/index.html is the tutorials' page (tests/browser/socketio/index.html),
# and DIR/socket.io/socket.io.js the official client bundle from npm
# (socket.io-client, the version pinned in tests/socketio/package.json,
# installed by scripts/install-socketio.sh), at the path a Node socket.io
# server would serve it from. Nothing is downloaded from a CDN but the page's
# own jQuery, which the browser fetches as the tutorial wrote it.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: scripts/socketio-chat.sh DIR" >&2
    exit 2
fi
repo="$(cd "$(dirname "$0")/.." && pwd)"
"$repo/scripts/install-socketio.sh"
dist="$repo/tests/socketio/node_modules/socket.io-client/dist"
mkdir -p "$1/socket.io"
cp "$repo/tests/browser/socketio/index.html" "$1/index.html"
cp "$dist/socket.io.js" "$dist/socket.io.js.map" "$1/socket.io/"
echo "socketio-chat: $1/index.html and $1/socket.io/socket.io.js; now: cargo run --release -- --static $1"
