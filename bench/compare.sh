#!/usr/bin/env bash
# compare.sh: duplex beside tokio-tungstenite, fastwebsockets, Node's `ws`
# and uWebSockets (and, for the line service, a tokio line echo and Node's
# `net`), under the same load from duplex-load.
#
#   bench/compare.sh                         all scenarios, 2 rounds
#   bench/compare.sh --scenarios "a b" --rounds 1 -t 5
#   bench/compare.sh --servers "duplex fws-echo"
#   bench/compare.sh --uws bench/.peers/uws/uws-echo
#   bench/compare.sh --scenarios "c c-paced" --binary   binary frames, not text
#
# Scenarios:
#   a        echo, 100 connections, 1 x 32 B in flight each   (msg/s)
#   a-paced  the same at 60,000 msg/s, which every server sustains (server CPU)
#   b        echo, 100 connections, 16 x 32 B in flight       (msg/s)
#   b-paced  the same at 1,000,000 msg/s                      (server CPU)
#   c        echo, 10 connections, 64 KiB messages            (msg/s, MB/s)
#   c-paced  the same at 30,000 msg/s                         (server CPU)
#   d        5,000 idle WebSocket connections                 (server RSS per connection)
#   d-line   10,000 idle line connections; on duplex, telnet chat members
#            in one lobby, each arrival announced to all (slow: ~80 s)
#   e        line echo, 100 connections, 16 x 32 B in flight  (msg/s; duplex --line-echo)
#   e-paced  the same at 1,000,000 msg/s                      (server CPU)
#   e-chat   e against duplex's chat door, each connection in a room of
#            its own: what the chat (names, rooms, history) costs per line
#   f        echo over wss://, 100 connections, 1 x 32 B in flight each, against
#            tokio-tungstenite on tokio-rustls (the same rustls and ring)
#   f-paced  the same at 60,000 msg/s for everyone                (server CPU)
#   f-big    echo over wss://, 10 connections, 64 KiB messages    (msg/s, MB/s)
#   d-tls    2,000 idle wss:// connections after the handshake    (server RSS per connection)
#   g        socket.io echo over its WebSocket transport, 100 clients, 1 x 32 B in
#            flight each: 42["message","/echo …"] out, 42["servermessage","…"] back,
#            against Node's socket.io server (npm)                  (msg/s)
#   g-paced  the same at 20,000 msg/s                               (server CPU)
#   d-sio    2,000 idle socket.io clients (WebSocket, connected)    (server RSS per client)
#   z        echo with permessage-deflate, 20 connections, 4 KiB of compressible text
#            (26 letters repeating), compressed both ways       (msg/s)
#   z-paced  the same at 5,000 msg/s                              (server CPU)
#   d-z      5,000 idle WebSocket connections with permessage-deflate agreed
#                                                                 (server RSS per connection)
#   z-bcast  one 4 KiB message to 10,000 compressing /chat members, 5 times
#            (time to the last delivery; duplex's compressions counted)
#
# The z scenarios run duplex against Node's `ws` with perMessageDeflate on
# (server ws-deflate), both with their defaults; --deflate-servers
# changes the list.
#
# When the load tool saturates its own core (small messages against a
# fast server, marked ! in its CPU column), msg/s is a limit of the pair:
# the paced scenarios then say more, by comparing server CPU per message.
#
# Each server runs pinned to core 0 (taskset -c 0), duplex-load to core 1.
# The peers are installed from their registries (crates.io, npm) into
# bench/.peers/ on first use. Raw outputs go to bench/results/<date-time>/.
#
# uWebSockets (server `uws`, in a to d and their paced runs) is C++ with no
# registry to install it from: build bench/peers/uws/echo.cpp with
# bench/peers/uws/build.sh (see README.md, "Measure it") and give the binary
# with --uws PATH, or in the environment as UWS_ECHO=PATH. Without it, its
# row in every table says "not measured".
#
# The WebSocket echoes (a to c, f) send text by default, which every server
# checks for UTF-8; --binary sends binary frames, which none checks.
#
# Options: --scenarios LIST, --servers LIST, --line-servers LIST (for e),
#          --tls-servers LIST (for f and d-tls), --deflate-servers LIST (for z*, d-z),
#          --sio-servers LIST (for g, d-sio),
#          --uws PATH, --binary, --rounds N (2), -t SECS (10),
#          -w SECS (2), --server-core N (0), --load-core N (1), --no-build,
#          --report DIR (print the tables of an earlier run's results again)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
PEERS="$HERE/.peers"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

SCENARIOS="a a-paced b b-paced c c-paced d d-line e e-paced e-chat f f-paced f-big d-tls z z-paced d-z z-bcast g g-paced d-sio"
SERVERS="duplex tt-echo-8k tt-echo fws-echo node-ws uws"
LINE_SERVERS="duplex tokio-lines node-net"
TLS_SERVERS="duplex tt-echo-tls-8k tt-echo-tls"
DEFLATE_SERVERS="duplex ws-deflate"
SIO_SERVERS="duplex node-sio"
ROUNDS=2
SECS=10
WARMUP=2
SERVER_CORE=0
LOAD_CORE=1
BUILD=1
REPORT=""
UWS=${UWS_ECHO:-}
BINARY=()

while [ $# -gt 0 ]; do
  case "$1" in
    --scenarios) SCENARIOS=$2; shift 2 ;;
    --servers) SERVERS=$2; shift 2 ;;
    --line-servers) LINE_SERVERS=$2; shift 2 ;;
    --tls-servers) TLS_SERVERS=$2; shift 2 ;;
    --deflate-servers) DEFLATE_SERVERS=$2; shift 2 ;;
    --sio-servers) SIO_SERVERS=$2; shift 2 ;;
    --uws) UWS=$2; shift 2 ;;
    --binary) BINARY=(--binary); shift ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    -t) SECS=$2; shift 2 ;;
    -w) WARMUP=$2; shift 2 ;;
    --server-core) SERVER_CORE=$2; shift 2 ;;
    --load-core) LOAD_CORE=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --report) REPORT=$2; BUILD=0; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed -n 's/^# \{0,1\}//p'; exit 0 ;;
    *) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

# ---- build duplex, install and build the peers ------------------------------

if [ "$BUILD" = 1 ]; then
  echo "== building duplex and duplex-load" >&2
  # --workspace: the load tool is in the tools crate, beside the server's.
  (cd "$ROOT" && cargo build --release --quiet --workspace --bins)

  echo "== installing the peers into bench/.peers" >&2
  mkdir -p "$PEERS/rust" "$PEERS/node"
  # Copies, so Cargo.lock, target/ and node_modules/ stay out of the tree.
  cp -r "$HERE/peers/rust/." "$PEERS/rust/"
  cp "$HERE/peers/node/"* "$PEERS/node/"
  (cd "$PEERS/rust" && cargo build --release --quiet --target-dir "$PEERS/rust/target")
  (cd "$PEERS/node" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi

LOAD="$TARGET/release/duplex-load"
DUPLEX="$TARGET/release/duplex"
[ -n "$REPORT" ] || for f in "$LOAD" "$DUPLEX" "$PEERS/rust/target/release/tt-echo" "$PEERS/node/node_modules/ws"; do
  [ -e "$f" ] || { echo "compare.sh: missing $f (run without --no-build)" >&2; exit 2; }
done
if [ -n "$UWS" ]; then
  [ -x "$UWS" ] || { echo "compare.sh: --uws $UWS is not an executable (bench/peers/uws/build.sh builds it)" >&2; exit 2; }
  UWS=$(cd "$(dirname "$UWS")" && pwd)/$(basename "$UWS")
elif [ -z "$REPORT" ] && [[ " $SERVERS " = *" uws "* ]]; then
  echo "== uws: not measured (pass --uws PATH, built by bench/peers/uws/build.sh)" >&2
fi

# ---- running one server under one load --------------------------------------

OUT=${REPORT:-$HERE/results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
# Below Linux's ephemeral range (32768 and up), so a port is never taken
# by one of the load tool's own outgoing connections from an earlier run.
PORT=$((10000 + RANDOM % 20000))

# The command line that starts server $1 listening on port $2 (for duplex,
# the WebSocket port; its line service gets $2 + 1; with $3 = tls, $2 is
# its TLS web door and the plain web door gets $2 + 1). It execs the
# server itself, so $! is the process whose CPU and RSS are read.
server_command() {
  local addr="127.0.0.1:$2" next="127.0.0.1:$(($2 + 1))"
  case "$1" in
    duplex) if [ "${3:-}" = tls ]; then
              echo "$DUPLEX --https $addr --http $next --tcp 127.0.0.1:0"
            else
              echo "$DUPLEX --http $addr --tcp $next"
            fi ;;
    # Each makes its self-signed certificate at start, as duplex does.
    tt-echo-tls) echo "$PEERS/rust/target/release/tt-echo-tls $addr" ;;
    tt-echo-tls-8k) echo "$PEERS/rust/target/release/tt-echo-tls $addr 8192" ;;
    tt-echo|fws-echo|tokio-lines) echo "$PEERS/rust/target/release/$1 $addr" ;;
    # tokio-tungstenite with an 8 KiB read buffer instead of its default
    # 128 KiB, which it zero-fills before every read.
    tt-echo-8k) echo "$PEERS/rust/target/release/tt-echo $addr 8192" ;;
    node-ws) echo "node $PEERS/node/ws-echo.js $addr" ;;
    ws-deflate) echo "node $PEERS/node/ws-deflate.js $addr" ;;
    node-net) echo "node $PEERS/node/net-lines.js $addr" ;;
    node-sio) echo "node $PEERS/node/sio-echo.js $addr" ;;
    uws) echo "$UWS $addr" ;;
    *) echo "compare.sh: unknown server $1" >&2; return 2 ;;
  esac
}

wait_for_port() {
  # Up to 10 s: Node takes a few seconds to start on a busy machine.
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# run SCENARIO SERVER ROUND: one measurement; the result line goes to a file.
run() {
  local scenario=$1 server=$2 round=$3
  PORT=$((PORT + 2))
  local sio="ws://127.0.0.1:$PORT/socket.io/?EIO=4&transport=websocket"
  local ws="ws://127.0.0.1:$PORT/echo" wss="wss://127.0.0.1:$PORT/echo" line="127.0.0.1:$PORT" join="" mode="" tls=""
  [[ "$scenario" = f* || "$scenario" = d-tls ]] && tls=tls
  if [ "$server" = duplex ]; then
    line="127.0.0.1:$((PORT + 1))"
    # The line door is an echo for e, and the chat (one room per
    # connection, so every line comes back once) for e-chat.
    case "$scenario" in
      e|e-paced) mode="--line-echo" ;;
      e-chat) join="--join-rooms" ;;
    esac
  fi
  local common=(-t "$SECS" -w "$WARMUP")
  # Text or binary: for the WebSocket echoes only (a to c, and f over TLS).
  local kind=("${BINARY[@]}")
  local args
  case "$scenario" in
    a) args=(echo "$ws" -c 100 -d 1 -s 32 "${common[@]}" "${kind[@]}") ;;
    a-paced) args=(echo "$ws" -c 100 -d 1 -s 32 --rate 60000 "${common[@]}" "${kind[@]}") ;;
    b) args=(echo "$ws" -c 100 -d 16 -s 32 "${common[@]}" "${kind[@]}") ;;
    b-paced) args=(echo "$ws" -c 100 -d 16 -s 32 --rate 1000000 "${common[@]}" "${kind[@]}") ;;
    c) args=(echo "$ws" -c 10 -d 1 -s 65536 "${common[@]}" "${kind[@]}") ;;
    c-paced) args=(echo "$ws" -c 10 -d 1 -s 65536 --rate 30000 "${common[@]}" "${kind[@]}") ;;
    d) args=(idle "$ws" -n 5000 -t 5) ;;
    d-line) args=(idle "$line" -n 10000 -t 5 --connect-timeout 200) ;;
    e|e-chat) args=(tcp-echo "$line" -c 100 -d 16 -s 32 $join "${common[@]}") ;;
    e-paced) args=(tcp-echo "$line" -c 100 -d 16 -s 32 --rate 1000000 "${common[@]}") ;;
    f) args=(echo "$wss" -c 100 -d 1 -s 32 "${common[@]}" "${kind[@]}") ;;
    f-paced) args=(echo "$wss" -c 100 -d 1 -s 32 --rate 60000 "${common[@]}" "${kind[@]}") ;;
    f-big) args=(echo "$wss" -c 10 -d 1 -s 65536 "${common[@]}" "${kind[@]}") ;;
    d-tls) args=(idle "$wss" -n 2000 -t 5) ;;
    z) args=(echo "$ws" -c 20 -d 1 -s 4096 --deflate "${common[@]}") ;;
    z-paced) args=(echo "$ws" -c 20 -d 1 -s 4096 --rate 5000 --deflate "${common[@]}") ;;
    d-z) args=(idle "$ws" -n 5000 -t 5 --deflate) ;;
    z-bcast) args=(broadcast "ws://127.0.0.1:$PORT/chat" -n 10000 -k 5 -s 4096 --deflate --connect-timeout 200)
             # Room for the 10,000 members and the one GET /stats after.
             [ "$server" = duplex ] && mode="--max-connections 10010" ;;
    g) args=(echo "$sio" --socketio -c 100 -d 1 -s 32 "${common[@]}") ;;
    g-paced) args=(echo "$sio" --socketio -c 100 -d 1 -s 32 --rate 20000 "${common[@]}") ;;
    d-sio) args=(idle "$sio" --socketio -n 2000 -t 5) ;;
  esac
  local log="$OUT/$scenario.$server.round$round"
  # shellcheck disable=SC2046
  taskset -c "$SERVER_CORE" $(server_command "$server" "$PORT" "$tls") $mode >"$log.server.log" 2>&1 &
  local pid=$!
  if ! wait_for_port "$PORT"; then
    echo "compare.sh: $server did not start (see $log.server.log)" >&2
    kill "$pid" 2>/dev/null || true
    echo "FAILED" >"$log.result"
    return
  fi
  sleep 0.3
  taskset -c "$LOAD_CORE" "$LOAD" "${args[@]}" --server-pid "$pid" >"$log.load.log" 2>&1 || true
  # duplex counts its compressions (GET /stats): a broadcast should cost one.
  local counted=""
  if [ "$server" = duplex ] && [[ "$scenario" = z* ]]; then
    counted=$(curl -s "http://127.0.0.1:$PORT/stats" |
      sed -n 's/.*"compressions":\([0-9]*\),"messages_compressed":\([0-9]*\).*/, compressions \1 for \2 compressed deliveries/p')
  fi
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  echo "$(tail -n 1 "$log.load.log")$counted" >"$log.result"
  echo "  $scenario round $round $server: $(cat "$log.result")" >&2
}

# field FILE REGEX: the first number captured by REGEX in the result line.
field() {
  { grep -oE "$2" "$1" || true; } | head -n 1 | { grep -oE '[0-9]+(\.[0-9]+)?' || true; } | tail -n 1
}

# ---- the table ----------------------------------------------------------------

# report SCENARIO SERVERS...: one table. For throughput scenarios the main
# figure is msg/s and msg per server-CPU-second; for d, kB per connection.
report() {
  local scenario=$1; shift
  local servers=("$@")
  echo
  case "$scenario" in
    a) echo "## a: echo, 100 conns, 1 x 32 B in flight" ;;
    a-paced) echo "## a-paced: echo, 100 conns, 1 x 32 B in flight, paced at 60,000 msg/s" ;;
    b) echo "## b: echo, 100 conns, 16 x 32 B in flight" ;;
    b-paced) echo "## b-paced: echo, 100 conns, 16 x 32 B in flight, paced at 1,000,000 msg/s" ;;
    c) echo "## c: echo, 10 conns, 64 KiB messages" ;;
    c-paced) echo "## c-paced: echo, 10 conns, 64 KiB messages, paced at 30,000 msg/s" ;;
    d) echo "## d: 5,000 idle WebSocket connections" ;;
    d-line) echo "## d-line: 10,000 idle line connections (duplex: telnet chat members, one lobby)" ;;
    e) echo "## e: line echo, 100 conns, 16 x 32 B in flight (duplex --line-echo)" ;;
    e-paced) echo "## e-paced: line echo, 100 conns, 16 x 32 B in flight, paced at 1,000,000 msg/s" ;;
    e-chat) echo "## e-chat: the same load on duplex's chat door, one room per connection" ;;
    f) echo "## f: echo over wss://, 100 conns, 1 x 32 B in flight" ;;
    f-paced) echo "## f-paced: echo over wss://, 100 conns, 1 x 32 B in flight, paced at 60,000 msg/s" ;;
    f-big) echo "## f-big: echo over wss://, 10 conns, 64 KiB messages" ;;
    d-tls) echo "## d-tls: 2,000 idle wss:// connections (rustls on both sides)" ;;
    z) echo "## z: echo with permessage-deflate, 20 conns, 4 KiB compressible text" ;;
    z-paced) echo "## z-paced: the same, paced at 5,000 msg/s" ;;
    d-z) echo "## d-z: 5,000 idle WebSocket connections, permessage-deflate agreed" ;;
    z-bcast) echo "## z-bcast: one 4 KiB message to 10,000 compressing members, 5 rounds" ;;
  esac
  if [ "$scenario" = z-bcast ]; then
    # Each round's time until the last of the 10,000 has the message, and
    # what duplex's counter says its compressor did.
    local f last
    declare -A last_p50
    for server in "${servers[@]}"; do
      for f in "$OUT/$scenario.$server".round*.result; do
        [ -f "$f" ] || continue
        echo "$server: $(cat "$f")"
        last=$(field "$f" 'last member p50 [0-9.]+')
        [ -n "$last" ] && last_p50[$server]=$last
      done
    done
    for server in "${servers[@]}"; do
      [ "$server" != duplex ] && [ -n "${last_p50[$server]:-}" ] && [ -n "${last_p50[duplex]:-}" ] &&
        printf 'last delivery, p50: %s %s ms, duplex %s ms: %s/duplex = %.2f\n' "$server" "${last_p50[$server]}" \
          "${last_p50[duplex]}" "$server" "$(echo "${last_p50[$server]} / ${last_p50[duplex]}" | bc -l)"
    done
    return
  fi
  if [[ "$scenario" = d* ]]; then
    # kB/conn: the growth from the start over all connections; marginal:
    # the growth over the second half alone, what one more connection
    # costs once the code is paged in and the pools are set up.
    printf '%-12s %8s %10s %8s %10s %10s %12s %12s\n' server round ok-conns "rss MB" "kB/conn" "marginal" \
      "peer/duplex" "peer/duplex"
    printf '%-12s %8s %10s %8s %10s %10s %12s %12s\n' "" "" "" "" "" "" "(kB/conn)" "(marginal)"
  else
    printf '%-12s %6s %11s %8s %8s %8s %9s %7s %12s %9s %9s\n' \
      server round "msg/s" "p50 ms" "p99 ms" "srv cpu" "load cpu" others "msg/cpu-s" "duplex/x" "duplex/x"
    printf '%-12s %6s %11s %8s %8s %8s %9s %7s %12s %9s %9s\n' "" "" "" "" "" "" "" "" "" "(msg/s)" "(cpu)"
  fi
  local round server f saturated=0
  declare -A value cost
  for server in "${servers[@]}"; do
    # A server with no result at all keeps its row, saying so.
    if ! compgen -G "$OUT/$scenario.$server.round*.result" >/dev/null; then
      local why=""
      [ "$server" = uws ] && why=" (pass --uws PATH)"
      printf '%-12s not measured%s\n' "$server" "$why"
      continue
    fi
    local sum=0 sum_cost=0 n=0
    for round in $(seq "$ROUNDS"); do
      f="$OUT/$scenario.$server.round$round.result"
      [ -f "$f" ] || continue
      if [[ "$scenario" = d* ]]; then
        local kb ok rss
        local marginal
        kb=$(field "$f" 'per-conn [0-9.]+') ; ok=$(field "$f" '[0-9]+ ok') ; rss=$(field "$f" 'srv-rss [0-9.]+')
        marginal=$(field "$f" 'marginal [0-9.]+')
        printf '%-12s %8s %10s %8s %10s %10s\n' "$server" "$round" "${ok:-?}" "${rss:-?}" "${kb:-?}" "${marginal:-?}"
        if [ -n "$kb" ] && [ -n "$marginal" ]; then
          sum=$(echo "$sum + $kb" | bc -l); sum_cost=$(echo "$sum_cost + $marginal" | bc -l); n=$((n + 1))
        fi
      else
        local rate p50 p99 cpu load others per_cpu
        rate=$(field "$f" '[0-9.]+ msg/s') ; p50=$(field "$f" 'p50 [0-9.]+')
        p99=$(field "$f" 'p99 [0-9.]+') ; cpu=$(field "$f" 'srv-cpu [0-9]+')
        load=$(field "$f" 'load-cpu [0-9]+') ; others=$(field "$f" 'foreign-cpu [0-9]+')
        # The load tool near its own limit: that row's msg/s is the pair's.
        [ -n "$load" ] && [ "$load" -ge 90 ] && { load="$load%!"; saturated=1; } || load="${load:-?}%"
        per_cpu=""
        [ -n "$rate" ] && [ -n "$cpu" ] && [ "$cpu" != 0 ] && per_cpu=$(echo "$rate * 100 / $cpu" | bc)
        printf '%-12s %6s %11s %8s %8s %7s%% %9s %6s%% %12s\n' "$server" "$round" "${rate:-?}" "${p50:-?}" \
          "${p99:-?}" "${cpu:-?}" "$load" "${others:-?}" "${per_cpu:-?}"
        if [ -n "$rate" ] && [ -n "$per_cpu" ]; then
          sum=$(echo "$sum + $rate" | bc -l); sum_cost=$(echo "$sum_cost + $per_cpu" | bc -l); n=$((n + 1))
        fi
      fi
    done
    [ "$n" -gt 0 ] || continue
    value[$server]=$(echo "$sum / $n" | bc -l)
    cost[$server]=$(echo "$sum_cost / $n" | bc -l)
  done
  # The mean of the rounds, and duplex divided by each server (above 1:
  # duplex does better; for d, how many times more memory the peer needs).
  for server in "${servers[@]}"; do
    [ -n "${value[$server]:-}" ] || continue
    if [[ "$scenario" = d* ]]; then
      local ratio="-" ratio_marginal="-"
      if [ -n "${value[duplex]:-}" ]; then
        ratio=$(printf '%.2f' "$(echo "${value[$server]} / ${value[duplex]}" | bc -l)")
        ratio_marginal=$(printf '%.2f' "$(echo "${cost[$server]} / ${cost[duplex]}" | bc -l)")
      fi
      printf '%-12s %8s %10s %8s %10.2f %10.2f %12s %12s\n' "$server" mean "" "" "${value[$server]}" \
        "${cost[$server]}" "$ratio" "$ratio_marginal"
    else
      local r1="-" r2="-"
      if [ -n "${value[duplex]:-}" ]; then
        r1=$(printf '%.2f' "$(echo "${value[duplex]} / ${value[$server]}" | bc -l)")
        r2=$(printf '%.2f' "$(echo "${cost[duplex]} / ${cost[$server]}" | bc -l)")
      fi
      printf '%-12s %6s %11.0f %8s %8s %8s %9s %7s %12.0f %9s %9s\n' "$server" mean "${value[$server]}" "" "" "" "" \
        "" "${cost[$server]}" "$r1" "$r2"
    fi
  done
  if [ "$saturated" = 1 ]; then
    echo "!: duplex-load used 90% or more of its core: that row's msg/s is the limit of the pair, not"
    echo "   of the server. Compare msg/cpu-s, or the paced scenario, instead."
  fi
}

# ---- main ---------------------------------------------------------------------

echo "== results in $OUT" >&2
[ -n "$REPORT" ] || for scenario in $SCENARIOS; do
  list=$SERVERS
  [[ "$scenario" = e* || "$scenario" = d-line ]] && list=$LINE_SERVERS
  [[ "$scenario" = f* || "$scenario" = d-tls ]] && list=$TLS_SERVERS
  [[ "$scenario" = z* || "$scenario" = d-z ]] && list=$DEFLATE_SERVERS
  [[ "$scenario" = g* || "$scenario" = d-sio ]] && list=$SIO_SERVERS
  for round in $(seq "$ROUNDS"); do
    for server in $list; do
      [ "$server" = uws ] && [ -z "$UWS" ] && continue
      run "$scenario" "$server" "$round"
    done
  done
done

{
  echo "# duplex compare: $(date -u '+%Y-%m-%d %H:%M UTC'), $ROUNDS round(s), ${SECS} s measured after ${WARMUP} s"
  echo "# server on core $SERVER_CORE, duplex-load on core $LOAD_CORE; 'others' = CPU used by anything else (noise)"
  [ ${#BINARY[@]} -eq 0 ] || echo "# WebSocket echoes in binary frames (--binary)"
  [ -z "$UWS" ] || echo "# uws: $UWS"
  for scenario in $SCENARIOS; do
    list=$SERVERS
    [[ "$scenario" = e* || "$scenario" = d-line ]] && list=$LINE_SERVERS
    [[ "$scenario" = f* || "$scenario" = d-tls ]] && list=$TLS_SERVERS
    [[ "$scenario" = z* || "$scenario" = d-z ]] && list=$DEFLATE_SERVERS
    [[ "$scenario" = g* || "$scenario" = d-sio ]] && list=$SIO_SERVERS
    # shellcheck disable=SC2086
    report "$scenario" $list
  done
} | tee "$OUT/table.txt"
