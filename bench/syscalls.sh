#!/usr/bin/env bash
# syscalls.sh: how many system calls duplex makes per echoed message.
#
#   bench/syscalls.sh            scenarios a (1 in flight) and b (16 in flight)
#   bench/syscalls.sh -d 16      one depth only
#   bench/syscalls.sh -d 1 -c 10 -s 65536 [--binary]    scenario c (64 KiB)
#
# Starts duplex on core 0 and duplex-load on core 1, attaches `strace -c -f`
# to the server for a few seconds in the middle of the run, and divides the
# calls by the messages the server echoed meanwhile (from GET /stats).
# strace slows the server a lot, so the rate under strace says nothing; the
# calls per message do: they show how well reads and writes are batched.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
DEPTHS="1 16"
CONNS=100
SIZE=32
BINARY=()
while [ $# -gt 0 ]; do
  case "$1" in
    -d) DEPTHS=$2; shift 2 ;;
    -c) CONNS=$2; shift 2 ;;
    -s) SIZE=$2; shift 2 ;;
    --binary) BINARY=(--binary); shift ;;
    *) echo "syscalls.sh: unknown option $1 (see the head of the script)" >&2; exit 2 ;;
  esac
done
command -v strace >/dev/null || { echo "syscalls.sh: needs strace (apt-get install strace)" >&2; exit 2; }

# The server and the load tool (a crate of its own, hence --workspace).
(cd "$ROOT" && cargo build --release --quiet --workspace --bins)

OUT="$HERE/results/syscalls-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"

messages_out() {
  curl -s "http://$1/stats" | grep -oE '"messages":\{"in":[0-9]+,"out":[0-9]+' | grep -oE '[0-9]+$'
}

for depth in $DEPTHS; do
  port=$((20000 + RANDOM % 20000))
  http="127.0.0.1:$port"
  taskset -c 0 "$TARGET/release/duplex" --http "$http" --tcp "127.0.0.1:$((port + 1))" >"$OUT/server.d$depth.log" 2>&1 &
  pid=$!
  sleep 0.5
  taskset -c 1 "$TARGET/release/duplex-load" echo "ws://$http/echo" -c "$CONNS" -d "$depth" -s "$SIZE" -w 1 -t 8 \
    "${BINARY[@]}" --server-pid "$pid" >"$OUT/load.d$depth.log" 2>&1 &
  load=$!
  sleep 3
  before=$(messages_out "$http")
  timeout -s INT 4 strace -c -f -p "$pid" -o "$OUT/strace.d$depth.txt" || true
  after=$(messages_out "$http")
  wait "$load" || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
  messages=$((after - before))
  # strace -c columns: % time, seconds, usecs/call, calls, [errors], name.
  calls=$(awk '$NF == "total" { print $4 }' "$OUT/strace.d$depth.txt")
  echo "== depth $depth: $messages messages echoed under strace, $calls system calls," \
    "$(echo "scale=3; $calls / $messages" | bc) per message"
  awk -v m="$messages" '$4 ~ /^[0-9]+$/ && $NF != "total" {
      printf "   %-16s %9d calls  %.3f per message\n", $NF, $4, $4 / m }' "$OUT/strace.d$depth.txt"
  echo "   load: $(tail -n 1 "$OUT/load.d$depth.log")"
done
