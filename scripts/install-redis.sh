#!/bin/sh
# Installs what the cluster tests need: Debian's `redis-server` (which
# brings `redis-cli`), without its recommended packages. The tests start
# their own redis-server on a free port with persistence off; the service
# the package installs is not used, and is stopped so it holds no port.
#
# Run as root on Debian. Safe to run again: when redis-server is already
# there it only checks and returns.
set -eu

if ! command -v redis-server >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends redis-server
    # The packaged service listens on 6379; the tests need none of it.
    if command -v service >/dev/null 2>&1; then
        service redis-server stop >/dev/null 2>&1 || true
    fi
fi

version="$(redis-server --version)"
case "$version" in
    *"v=7."* | *"v=8."*) ;;
    *)
        # XADD ... MAXLEN ~ and XREAD BLOCK need 5.0; the tests are run
        # against 7 (Debian 12's), so anything older is refused loudly.
        echo "install-redis: $version is too old (7 or later expected)" >&2
        exit 1
        ;;
esac
command -v redis-cli >/dev/null 2>&1 || {
    echo "install-redis: redis-server is installed but redis-cli is missing" >&2
    exit 1
}
