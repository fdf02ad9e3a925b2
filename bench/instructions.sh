#!/usr/bin/env bash
# instructions.sh: how many user-space instructions duplex spends per
# echoed message, counted by callgrind.
#
#   bench/instructions.sh                         scenario c: 10 conns, 64 KiB text
#   bench/instructions.sh --binary                the same in binary
#   bench/instructions.sh -c 100 -s 32 --rate 2000  small messages
#   bench/instructions.sh --server PATH           another build of duplex
#
# Where the machine has no hardware counters (`perf stat -e instructions`
# says "not supported", as in most VMs), callgrind's count is the steady
# figure to compare two builds by: unlike wall-clock time it does not move
# when something else runs on the machine. It counts user space only; the
# kernel's share (the copies in read and write) is syscalls.sh's business.
# The server runs under valgrind, some fifty times slower, so the load is
# paced well below what it could take; start-up and handshakes are spread
# over a few thousand messages.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
SERVER=$TARGET/release/duplex
CONNS=10
SIZE=65536
RATE=300
SECS=8
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    -c) CONNS=$2; shift 2 ;;
    -s) SIZE=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    -t) SECS=$2; shift 2 ;;
    --binary) EXTRA+=(--binary); shift ;;
    --server) SERVER=$2; shift 2 ;;
    *) echo "instructions.sh: unknown option $1 (see the head of the script)" >&2; exit 2 ;;
  esac
done
command -v valgrind >/dev/null || { echo "instructions.sh: needs valgrind (apt-get install valgrind)" >&2; exit 2; }

(cd "$ROOT" && cargo build --release --quiet --workspace --bins)

OUT="$HERE/results/instructions-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
port=$((20000 + RANDOM % 20000))
http="127.0.0.1:$port"

messages_out() {
  curl -s "http://$1/stats" | grep -oE '"messages":\{"in":[0-9]+,"out":[0-9]+' | grep -oE '[0-9]+$'
}

valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" \
  "$SERVER" --http "$http" --tcp "127.0.0.1:$((port + 1))" >"$OUT/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -s "http://$http/healthz" >/dev/null && break; sleep 0.2; done
"$TARGET/release/duplex-load" echo "ws://$http/echo" -c "$CONNS" -d 1 -s "$SIZE" --rate "$RATE" \
  -t "$SECS" -w 1 "${EXTRA[@]}" >"$OUT/load.log" 2>&1
messages=$(messages_out "$http")
# SIGINT: a graceful shutdown, after which callgrind writes its counts.
kill -INT "$pid"
wait "$pid" || true
total=$(awk '/^(summary|totals):/ { print $2; exit }' "$OUT/callgrind.out")
echo "== $messages messages echoed, $total instructions, $((total / messages)) per message"
echo "   load: $(tail -n 1 "$OUT/load.log")"
echo "   by function: callgrind_annotate $OUT/callgrind.out"
