#!/usr/bin/env bash
# What watching the loop costs: server CPU per message in the paced echo of
# bench/compare.sh's scenario a-paced (100 connections, 32 B, 60,000 msg/s),
#
#   off    this build, nobody watching (the turn record is off)
#   open   this build, with one /loop observer (bench/loop-observer.mjs):
#          the page's loop panel open
#   base   a duplex built without the turn record, when given (--base BIN)
#
# in interleaved rounds, each server pinned to core 0 and the load to core 1.
# The server's CPU time is read from /proc/PID/stat (clock ticks) over the
# whole load run, divided by the messages echoed (a loaded machine may not
# reach the paced rate); the medians over the rounds are compared.
#
#   bench/loop-overhead.sh [--rounds N] [-t SECS] [--base PATH]
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=5 SECS=10 BASE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    -t) SECS=$2; shift 2 ;;
    --base) BASE=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "loop-overhead: unknown option $1" >&2; exit 2 ;;
  esac
done

cargo build --release --workspace -q
DUPLEX=target/release/duplex LOAD=target/release/duplex-load
configs=(off open)
[ -n "$BASE" ] && configs=(base off open)
PORT=28000
out=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$out"' EXIT

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

for round in $(seq "$ROUNDS"); do
  for config in "${configs[@]}"; do
    PORT=$((PORT + 2))
    bin=$DUPLEX
    [ "$config" = base ] && bin=$BASE
    taskset -c 0 "$bin" --tcp "127.0.0.1:$((PORT + 1))" --http "127.0.0.1:$PORT" >"$out/server.log" 2>&1 &
    server=$!
    pids+=("$server")
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.05; done
    observer=""
    if [ "$config" = open ]; then
      taskset -c 1 node bench/loop-observer.mjs "127.0.0.1:$PORT" >"$out/observer.log" 2>&1 &
      observer=$!
      pids+=("$observer")
    fi
    sleep 0.3
    before=$(ticks "$server")
    taskset -c 1 "$LOAD" echo "ws://127.0.0.1:$PORT/echo" -c 100 -d 1 -s 32 --rate 60000 -t "$SECS" -w 2 \
      --server-pid "$server" >"$out/load.log" 2>&1 || true
    after=$(ticks "$server")
    [ -n "$observer" ] && { kill "$observer"; wait "$observer" 2>/dev/null || true; }
    kill "$server"; wait "$server" 2>/dev/null || true
    result=$(tail -n 1 "$out/load.log")
    # Messages echoed in the measured window; the ticks cover the warm-up
    # too, the same share of every run.
    echoed=$(echo "$result" | grep -oE 'echoed [0-9]+' | grep -oE '[0-9]+' || echo 0)
    echo "$config $((after - before)) $echoed" >>"$out/ticks"
    echo "round $round $config: $((after - before)) ticks; $result" >&2
  done
done

echo
echo "server CPU per 1000 messages echoed (clock ticks, median of $ROUNDS rounds), against 'off':"
for config in "${configs[@]}"; do
  awk -v c="$config" '$1 == c && $3 > 0 { printf "%.4f\n", $2 * 1000 / $3 }' "$out/ticks" | sort -n |
    awk -v c="$config" '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%s %.4f\n", c, m }'
done >"$out/medians"
awk '{ m[$1] = $2; printf "%-5s %.4f ticks per 1000 messages\n", $1, $2 } END {
  for (c in m) if (c != "off") printf "%s / off = %.3f\n", c, m[c] / m["off"]
}' "$out/medians"
