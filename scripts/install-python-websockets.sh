#!/bin/sh
# Installs the Python `websockets` library from Debian (python3-websockets,
# without its recommended packages): a second, independent implementation
# of permessage-deflate (RFC 7692) for the compression tests to talk to
# the server with (tests/deflate.rs). Its client offers
# `permessage-deflate; client_max_window_bits`, as browsers do.
#
# Debian's package goes with Debian's interpreter, /usr/bin/python3, which
# the tests call by that path (a `python3` earlier on PATH may be another).
#
# Run as root on Debian. Safe to run again: when it is there already it
# only checks and returns.
set -eu

if ! /usr/bin/python3 -c 'import websockets' 2>/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends python3-websockets
fi
/usr/bin/python3 -c 'import websockets, sys; print("python3-websockets", websockets.__version__, file=sys.stderr)'
