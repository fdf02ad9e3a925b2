#!/usr/bin/env bash
# Runs the Autobahn|Testsuite (RFC 6455 and RFC 7692 conformance) against
# duplex's /echo endpoint and compares every case's verdict with the
# expected results committed in autobahn/expected.txt.
#
#   scripts/autobahn.sh            all 517 cases, sections 1-13 (12 and 13
#                                  are permessage-deflate; about 25 minutes)
#   scripts/autobahn.sh --quick    sections 1-10, and 12.1 and 13.1-13.2 of
#                                  the compression cases (a few minutes):
#                                  what scripts/test.sh runs
#   scripts/autobahn.sh --tls      over wss://, against --https (the
#                                  verdicts must not change: TLS is a layer
#                                  under the WebSocket, not part of it)
#   scripts/autobahn.sh --update   run, and rewrite the lines of
#                                  autobahn/expected.txt for the cases run
#
# The options combine (--quick --tls). The suite's client, `wstest`, is
# installed by scripts/install-autobahn.sh (Python 2.7; see there for where
# that comes from), which this runs first. Exit status: 0 when every case
# ran and matched, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
scheme=ws
door=http
cases='*'
update=no
time_limit=3600
for arg in "$@"; do
    case $arg in
    # The suite's client does not check the certificate: the self-signed
    # one duplex makes at start will do.
    --tls) scheme=wss door=https ;;
    --quick) cases='1.*,2.*,3.*,4.*,5.*,6.*,7.*,8.*,9.*,10.*,12.1.*,13.1.*,13.2.*' time_limit=900 ;;
    --update) update=yes ;;
    *) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64 ;;
    esac
done
./scripts/install-autobahn.sh
wstest=${AUTOBAHN_PREFIX:-/opt/duplex-autobahn}/py27/bin/wstest
cargo build --release --quiet
out=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$out"' EXIT
tls_door=()
[ "$door" = https ] && tls_door=(--https 127.0.0.1:0)
./target/release/duplex --tcp 127.0.0.1:0 --http 127.0.0.1:0 "${tls_door[@]}" >"$out/listening" 2>"$out/server.log" &
pid=$!
for _ in $(seq 100); do
    grep -q 'duplex listening' "$out/listening" 2>/dev/null && break
    sleep 0.1
done
addr=$(sed -n "s/.* $door=\([^ ]*\).*/\1/p" "$out/listening" | head -n1)
[ -n "$addr" ] || { echo "autobahn.sh: duplex did not start" >&2; cat "$out/server.log" >&2; exit 1; }

# The fuzzing client's spec: one server, the cases asked for.
python3 - "$out" "$scheme://$addr/echo" "$cases" >"$out/spec.json" <<'PY'
import json, sys
out, url, cases = sys.argv[1:]
json.dump({
    "outdir": out + "/report",
    "servers": [{"agent": "duplex", "url": url}],
    "cases": cases.split(","),
    "exclude-cases": [],
    "exclude-agent-cases": {},
    "options": {"failByDrop": False},
}, sys.stdout)
PY
echo "autobahn.sh: cases $cases against $scheme://$addr/echo"
start=$(date +%s)
status=0
(cd "$out" && timeout -k 30 "$time_limit" "$wstest" -m fuzzingclient -s spec.json >wstest.log 2>&1) || status=$?
echo "autobahn.sh: the suite ran for $(($(date +%s) - start)) s"
if [ "$status" != 0 ] || [ ! -f "$out/report/index.json" ]; then
    echo "autobahn.sh: wstest failed (exit $status); its log ends:" >&2
    tail -n 20 "$out/wstest.log" >&2
    exit 1
fi

# One line per case, `ID BEHAVIOR CLOSE-BEHAVIOR`, for the cases run; and
# the lines of expected.txt for the cases asked for, to compare them with.
python3 - "$out/report/index.json" "$cases" autobahn/expected.txt "$out" "$update" <<'PY'
import fnmatch, json, sys
index, patterns, expected_path, out, update = sys.argv[1:]
patterns = patterns.split(",")
def key(case):
    return [int(part) for part in case.split(".")]
def asked(case):
    return any(fnmatch.fnmatch(case, p) for p in patterns)
cases = next(iter(json.load(open(index)).values()))
got = {case: "%s %s %s" % (case, r["behavior"], r["behaviorClose"]) for case, r in cases.items()}
expected = {}
for line in open(expected_path):
    if line.strip():
        expected[line.split()[0]] = line.rstrip("\n")
if update == "yes":
    expected = {c: l for c, l in expected.items() if not asked(c)}
    expected.update(got)
    with open(expected_path, "w") as f:
        for case in sorted(expected, key=key):
            f.write(expected[case] + "\n")
with open(out + "/results.txt", "w") as f:
    for case in sorted(got, key=key):
        f.write(got[case] + "\n")
with open(out + "/expected.txt", "w") as f:
    for case in sorted((c for c in expected if asked(c)), key=key):
        f.write(expected[case] + "\n")
counts = {}
for line in got.values():
    counts[line.split()[1]] = counts.get(line.split()[1], 0) + 1
print("autobahn.sh: %d cases: %s" % (len(got), ", ".join("%d %s" % (n, b) for b, n in sorted(counts.items()))))
PY
if [ "$update" = yes ]; then
    echo "autobahn.sh: updated autobahn/expected.txt ($(wc -l <autobahn/expected.txt) cases)"
    exit 0
fi
if diff -u "$out/expected.txt" "$out/results.txt"; then
    echo "autobahn.sh: $(wc -l <"$out/results.txt") cases, every one as expected"
else
    echo "autobahn.sh: results differ from autobahn/expected.txt" >&2
    exit 1
fi
