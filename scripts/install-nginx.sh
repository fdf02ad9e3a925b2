#!/bin/sh
# Installs what the reverse-proxy test (tests/nginx.rs) needs: Debian's
# `nginx`, without its recommended packages. The test runs it as its own
# user with a prefix, pid file and logs of its own, never as the system's
# service, so nothing is enabled or started here.
#
# Run as root on Debian. Safe to run again: when nginx is there it only
# checks that it runs.
set -eu

if ! dpkg-query -W -f '${Status}' nginx 2>/dev/null | grep -q 'install ok installed'; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends nginx
fi

if ! /usr/sbin/nginx -v >/dev/null 2>&1; then
    echo "install-nginx: /usr/sbin/nginx is installed but does not run" >&2
    exit 1
fi
