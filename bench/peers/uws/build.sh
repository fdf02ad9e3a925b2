#!/usr/bin/env bash
# build.sh: builds bench/peers/uws/echo.cpp against uWebSockets and uSockets,
# as compare.sh's `uws` server.
#
#   bench/peers/uws/build.sh UWS_SRC_DIR [OUT_DIR]
#
# UWS_SRC_DIR is a uWebSockets checkout with uSockets in its uSockets/ folder
# (`git submodule update --init uSockets` puts it there); USOCKETS_SRC=DIR takes
# it from elsewhere. The binary goes to OUT_DIR/uws-echo (default bench/.peers/uws/)
# and its path is printed last. The sources are only read: the objects are
# written in OUT_DIR. Needs a C and a C++20 compiler (CC, CXX; cc and g++).
#
# The build is uWebSockets' own default without its options: uSockets on its
# epoll backend (no libuv, no io_uring), no TLS (LIBUS_NO_SSL), no zlib
# (UWS_NO_ZLIB: echo.cpp turns compression off anyway), -O3 and link-time
# optimisation. No -march=native, which uWebSockets' Makefile adds: duplex and
# the Rust peers are built for the generic CPU as well.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 1 ] || { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
UWS=$(cd "$1" && pwd)
US=$(cd "${USOCKETS_SRC:-$UWS/uSockets}" && pwd)
OUT=${2:-$(dirname "$(dirname "$HERE")")/.peers/uws}
CC=${CC:-cc}
CXX=${CXX:-g++}

[ -f "$UWS/src/App.h" ] || { echo "build.sh: no src/App.h in $UWS (a uWebSockets checkout?)" >&2; exit 2; }
[ -f "$US/src/libusockets.h" ] || {
  echo "build.sh: no src/libusockets.h in $US (clone with --recursive, or set USOCKETS_SRC)" >&2; exit 2; }

mkdir -p "$OUT/obj"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/obj/*.o

# uSockets: C. Its TLS and io_uring files compile to nothing without their
# macros; crypto/ stays out, it is TLS only.
(cd "$OUT/obj" && "$CC" -std=c11 -O3 -flto=auto -DLIBUS_NO_SSL -I"$US/src" -c "$US"/src/*.c "$US"/src/eventing/*.c)

# uWebSockets: headers only, so the echo is its one C++ file.
"$CXX" -std=c++20 -O3 -flto=auto -DLIBUS_NO_SSL -DUWS_NO_ZLIB -I"$UWS/src" -I"$US/src" \
  "$HERE/echo.cpp" "$OUT"/obj/*.o -o "$OUT/uws-echo"

echo "$OUT/uws-echo"
