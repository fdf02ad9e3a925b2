#!/usr/bin/env bash
# Fuzzes the parsers a stranger can reach: the WebSocket frame decoder
# (and, with permessage-deflate on, the bounded inflater behind it),
# the HTTP request reader (with the handshake checks), the Origin and Host
# policy, request bodies (Content-Length and chunked), the telnet line
# codec, Redis replies as the relay reads them, and a socket.io client's
# polling body (Engine.IO packets, then Socket.IO packets and their JSON);
# and the chat's commands, from a few members into one hub, whose books
# must always agree.
#
#   scripts/fuzz.sh [SECONDS]     each target for SECONDS (default 600)
#
# Seed inputs live in fuzz/corpus/TARGET/. That folder is ignored by git,
# because a run adds what it finds there; the committed seeds were added
# with `git add -f`.
#
# Needs a nightly-capable toolchain for cargo-fuzz's sanitizer flags; it
# uses RUSTC_BOOTSTRAP=1 on the installed stable toolchain so no other
# toolchain has to be fetched.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for target in frame_decoder inflate http_request origin_host request_body line_codec hub_commands resp_reply socketio_body; do
    echo "== $target for ${seconds}s"
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- -max_total_time="$seconds" -max_len=65536 2>&1 | tail -n 4
done
