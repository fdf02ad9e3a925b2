#!/usr/bin/env bash
# Runs the Autobahn|Testsuite (RFC 6455 conformance, sections 1-10) against
# duplex's /echo endpoint and compares every case's verdict with the
# expected results committed in autobahn/expected.txt.
#
#   scripts/autobahn.sh            run and diff (exit 1 on any difference)
#   scripts/autobahn.sh --tls      the same over wss://, against --https
#                                  (the verdicts must not change: TLS is a
#                                  layer under the WebSocket, not part of it)
#   scripts/autobahn.sh --update   run and rewrite autobahn/expected.txt
#
# Needs the suite's fuzzing client. AUTOBAHN_DIR names a directory holding
# its run.sh (default: ../shared/tools/autobahn beside this checkout); the
# suite itself is the Python 2 package `autobahntestsuite`.
set -euo pipefail
cd "$(dirname "$0")/.."
scheme=ws
door=http
if [ "${1:-}" = "--tls" ]; then
    # The suite's client does not check the certificate: the self-signed
    # one duplex makes at start will do.
    scheme=wss
    door=https
    shift
fi
autobahn_dir=${AUTOBAHN_DIR:-../shared/tools/autobahn}
if [ ! -x "$autobahn_dir/run.sh" ]; then
    echo "autobahn.sh: no $autobahn_dir/run.sh; set AUTOBAHN_DIR to the suite's runner" >&2
    exit 2
fi
cargo build --release --quiet
out=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$out"' EXIT
tls_door=()
[ "$door" = https ] && tls_door=(--https 127.0.0.1:0)
./target/release/duplex --tcp 127.0.0.1:0 --http 127.0.0.1:0 "${tls_door[@]}" >"$out/listening" 2>"$out/server.log" &
pid=$!
for _ in $(seq 100); do
    grep -q 'duplex listening' "$out/listening" 2>/dev/null && break
    sleep 0.1
done
addr=$(sed -n "s/.* $door=\([^ ]*\).*/\1/p" "$out/listening" | head -n1)
[ -n "$addr" ] || { echo "autobahn.sh: duplex did not start" >&2; cat "$out/server.log" >&2; exit 2; }
status=0
OUT="$out/report" AGENT=duplex "$autobahn_dir/run.sh" "$scheme://$addr/echo" || status=$?
python3 - "$out/report/index.json" >"$out/results.txt" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
cases = next(iter(report.values()))
def key(case):
    return [int(part) for part in case.split(".")]
for case in sorted(cases, key=key):
    result = cases[case]
    print(f"{case} {result['behavior']} {result['behaviorClose']}")
PY
if [ "${1:-}" = "--update" ]; then
    cp "$out/results.txt" autobahn/expected.txt
    echo "autobahn.sh: wrote autobahn/expected.txt ($(wc -l <autobahn/expected.txt) cases)"
    exit "$status"
fi
if diff -u autobahn/expected.txt "$out/results.txt"; then
    echo "autobahn.sh: every case as expected"
else
    echo "autobahn.sh: results differ from autobahn/expected.txt" >&2
    exit 1
fi
exit "$status"
