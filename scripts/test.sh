#!/usr/bin/env bash
# Runs every test: unit, property, integration (real sockets), examples,
# the doc examples, the headless-browser test of the built-in page, and the
# load tools' own tests (--workspace: they are a crate of their own, tools/).
# Installs what the tests need first: the browsers (Chromium, Firefox,
# puppeteer-core), nginx, the Prometheus parser the /metrics test reads
# with (prometheus_client), the Python websockets client of the
# compression tests, redis-server for the cluster tests (tests/cluster.rs)
# and the official socket.io client of the socket.io tests. Ends with the
# Autobahn|Testsuite's quick set (sections 1-10 and some of 12-13, diffed
# against autobahn/expected.txt; the suite installs itself).
set -euo pipefail
cd "$(dirname "$0")/.."

# The doc examples of the public codec API (src/lib.rs, src/ws/): a run
# that finds fewer has lost some, and a count of 0 would pass silently.
doc_tests_at_least=8

./scripts/install-browser.sh
./scripts/install-metrics-parser.sh
./scripts/install-nginx.sh
./scripts/install-python-websockets.sh
./scripts/install-redis.sh
./scripts/install-socketio.sh
cargo test --workspace --all-targets

doc_log=$(mktemp)
trap 'rm -f "$doc_log"' EXIT
cargo test --workspace --doc 2>&1 | tee "$doc_log"
ran=$(sed -n 's/^test result: ok\. \([0-9]*\) passed.*/\1/p' "$doc_log" | awk '{n += $1} END {print n + 0}')
if [ "$ran" -lt "$doc_tests_at_least" ]; then
    echo "test.sh: cargo test --doc ran $ran doc examples, expected at least $doc_tests_at_least" >&2
    exit 1
fi
echo "test.sh: $ran doc examples ran (at least $doc_tests_at_least expected)"

# The exercises' checks (docs/exercises.md): each fails on this code, and
# passes with its reference solution applied, in a temporary copy.
./scripts/check-exercises.sh

./scripts/autobahn.sh --quick
