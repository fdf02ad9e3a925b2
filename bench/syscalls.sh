#!/usr/bin/env bash
# syscalls.sh: how many system calls a server makes per echoed message.
#
#   bench/syscalls.sh                          duplex, 1 and 16 messages in flight
#   bench/syscalls.sh --uws bench/.peers/uws/uws-echo    and uWebSockets beside it
#   bench/syscalls.sh -d 16 -t 5               one depth only, 5 s each
#   bench/syscalls.sh -d 1 -c 10 -s 65536 [--binary]   scenario c (64 KiB)
#   bench/syscalls.sh --line                   the line door as an echo (duplex
#                                              --line-echo, duplex-load tcp-echo,
#                                              32 B lines), beside the tokio line
#                                              echo from bench/.peers if built
#
# Each server runs on core 0 under `duplex-load echo` (or `tcp-echo`; by
# default 100 connections, 32-byte messages) on core 1, from its first connection to its last, with
# `perf stat` counting the server's system calls at their tracepoints. The
# calls are divided by the messages the load tool had echoed. Tracepoints
# cost far less than strace, so the server runs near its normal speed, but
# the rate still says little: the calls per message say how well reads and
# writes are batched.
#
# Needs perf (apt-get install linux-perf) and the right to trace the server
# (root, or kernel.perf_event_paranoid <= 1).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
DEPTHS="1 16"
SECS=5
UWS=${UWS_ECHO:-}
LINE=0
CONNS=100
SIZE=32
BINARY=()

while [ $# -gt 0 ]; do
  case "$1" in
    -d) DEPTHS=$2; shift 2 ;;
    -t) SECS=$2; shift 2 ;;
    --uws) UWS=$2; shift 2 ;;
    --line) LINE=1; shift ;;
    -c) CONNS=$2; shift 2 ;;
    -s) SIZE=$2; shift 2 ;;
    --binary) BINARY=(--binary); shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed -n 's/^# \{0,1\}//p'; exit 0 ;;
    *) echo "syscalls.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v perf >/dev/null || { echo "syscalls.sh: needs perf (apt-get install linux-perf)" >&2; exit 2; }
if [ -n "$UWS" ] && [ ! -x "$UWS" ]; then
  echo "syscalls.sh: --uws $UWS is not an executable (bench/peers/uws/build.sh builds it)" >&2
  exit 2
fi

# The server and the load tool (a crate of its own, hence --workspace).
(cd "$ROOT" && cargo build --release --quiet --workspace --bins)

OUT="$HERE/results/syscalls-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"

# Every call a server might read, write or wait with. uWebSockets uses
# recv and send where duplex uses read and write.
CALLS="read readv recvfrom recvmsg write writev sendto sendmsg epoll_wait epoll_pwait epoll_pwait2 epoll_ctl"
EVENTS="raw_syscalls:sys_enter"
for call in $CALLS; do
  [ -e "/sys/kernel/tracing/events/syscalls/sys_enter_$call" ] && EVENTS="$EVENTS,syscalls:sys_enter_$call"
done

wait_for_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# measure NAME DEPTH COMMAND...: one server under one load. The command
# gets the address to listen on as its last argument.
measure() {
  local name=$1 depth=$2; shift 2
  local port=$((20000 + RANDOM % 20000))
  local traffic=(echo "ws://127.0.0.1:$port/echo")
  [ "$LINE" = 0 ] || traffic=(tcp-echo "127.0.0.1:$port")
  local log="$OUT/$name.d$depth"
  taskset -c 0 "$@" "127.0.0.1:$port" >"$log.server.log" 2>&1 &
  local pid=$!
  wait_for_port "$port" || { echo "syscalls.sh: $name did not start (see $log.server.log)" >&2; kill "$pid"; exit 1; }
  perf stat -x, -e "$EVENTS" -p "$pid" -o "$log.perf.csv" &
  local perf=$!
  # perf attaches in a few milliseconds; what it misses of the first
  # handshakes is nothing beside a few hundred thousand messages.
  sleep 0.2
  taskset -c 1 "$TARGET/release/duplex-load" "${traffic[@]}" -c "$CONNS" -d "$depth" -s "$SIZE" \
    -w 0 -t "$SECS" "${BINARY[@]}" --server-pid "$pid" >"$log.load.log" 2>&1
  kill -INT "$perf"; wait "$perf" 2>/dev/null || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local echoed
  echoed=$(grep -oE 'echoed [0-9]+' "$log.load.log" | grep -oE '[0-9]+')
  [ "${echoed:-0}" -gt 0 ] || { echo "syscalls.sh: $name echoed nothing (see $log.load.log)" >&2; exit 1; }
  # perf stat -x, lines: count,unit,event,...
  awk -F, -v m="$echoed" -v name="$name" -v depth="$depth" '
    $3 == "raw_syscalls:sys_enter" { total = $1 }
    $3 ~ /^syscalls:sys_enter_/ && $1 ~ /^[0-9]+$/ && $1 > 0 {
      sub(/^syscalls:sys_enter_/, "", $3); calls[$3] = $1 }
    END {
      printf "%-8s depth %-3s %9d messages  %.3f calls per message:", name, depth, m, total / m
      for (c in calls) printf "  %s %.3f", c, calls[c] / m
      printf "\n" }' "$log.perf.csv" | tee -a "$OUT/summary.txt"
}

TOKIO_LINES="$HERE/.peers/rust/target/release/tokio-lines"
for depth in $DEPTHS; do
  if [ "$LINE" = 1 ]; then
    measure duplex "$depth" "$TARGET/release/duplex" --line-echo --http 127.0.0.1:0 --tcp
    [ ! -x "$TOKIO_LINES" ] || measure tokio-lines "$depth" "$TOKIO_LINES"
  else
    measure duplex "$depth" "$TARGET/release/duplex" --tcp 127.0.0.1:0 --http
    [ -z "$UWS" ] || measure uws "$depth" "$UWS"
  fi
done
echo "(raw outputs in $OUT)"
