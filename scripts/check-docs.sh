#!/usr/bin/env bash
# Runs every ```sh block of README.md and docs/*.md, in reading order, and
# checks that each one exits 0 and prints what the page says it prints.
#
#   scripts/check-docs.sh            check everything
#   scripts/check-docs.sh -v         also show each block's output
#
# How a page is read:
#
# * ```sh blocks are run, one after the other, each in a fresh
#   `bash -eo pipefail` from the repository's root, with a time limit.
#   ```console and ```text blocks are never run: they are for commands that
#   wait for a person (telnet, a browser, a debugger) and for output.
# * A ```text block right after a ```sh block (only blank lines between) is
#   that block's expected output: each of its lines must appear in the real
#   output, in order. In expected output `…` stands for whatever differs
#   from run to run (ports, names such as guest-7, times, counts).
# * The pages use the default addresses, 127.0.0.1:18001 (telnet) and
#   127.0.0.1:8080 (web). This script starts its own duplex on free ports
#   and puts those ports in place of 18001 and 8080, so it never disturbs
#   a server you are running. `./target/release/duplex` and
#   `cargo run --release --` become the binary under test.
# * README.md's blocks that cannot run unattended are not run (see
#   skip_reason below): `cargo run --release` (the server itself, which
#   this script starts and whose first line it checks instead), the
#   examples, telnet and the browser, `./scripts/test.sh` (it runs this
#   script), Autobahn, fuzzing and benchmarks. Each is listed as "skip".
#
# DUPLEX_BIN names the binary (default target/release/duplex, built with
# `cargo build --release` if missing). BLOCK_TIMEOUT is each block's limit
# in seconds (default 20). Needs bash, python3, curl; openssl if a block
# uses it.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

verbose=0
[ "${1:-}" = "-v" ] && verbose=1
block_timeout=${BLOCK_TIMEOUT:-20}

bin=${DUPLEX_BIN:-$root/target/release/duplex}
if [ ! -x "$bin" ]; then
    echo "check-docs: building $bin" >&2
    cargo build --release --quiet || exit 2
fi
case "$bin" in /*) ;; *) bin="$root/$bin" ;; esac

work=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
    rm -rf "$work"
}
trap cleanup EXIT

"$bin" --tcp 127.0.0.1:0 --http 127.0.0.1:0 >"$work/listening" 2>"$work/server.log" &
pid=$!
for _ in $(seq 100); do
    grep -q 'duplex listening' "$work/listening" 2>/dev/null && break
    sleep 0.1
done
banner=$(head -n1 "$work/listening")
tcp_port=$(sed -n 's/.*tcp=[^ ]*:\([0-9]*\).*/\1/p' <<<"$banner")
http_port=$(sed -n 's/.*http=[^ ]*:\([0-9]*\).*/\1/p' <<<"$banner")
if [ -z "$tcp_port" ] || [ -z "$http_port" ]; then
    echo "check-docs: duplex did not start" >&2
    cat "$work/server.log" >&2
    exit 2
fi

# Split the pages into numbered blocks: NNN.sh (the commands), NNN.expect
# (the output shown after it, if any), NNN.where (page and line).
python3 - "$work" README.md docs/README.md docs/[0-9][0-9]-*.md <<'PY'
import os, re, sys
out = sys.argv[1]
n = 0
for page in sys.argv[2:]:
    lines = open(page, encoding="utf-8").read().split("\n")
    blocks = []  # (lang, start line, body lines, end line)
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if m:
            lang, start, body = m.group(1), i + 1, []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            blocks.append((lang, start, body, i))
        i += 1
    for k, (lang, start, body, end) in enumerate(blocks):
        if lang != "sh":
            continue
        n += 1
        base = os.path.join(out, f"{n:03d}")
        open(base + ".sh", "w").write("\n".join(body) + "\n")
        open(base + ".where", "w").write(f"{page}:{start}")
        if k + 1 < len(blocks):
            nlang, nstart, nbody, _ = blocks[k + 1]
            between = lines[end + 1:nstart - 1]
            if nlang == "text" and all(not l.strip() for l in between):
                open(base + ".expect", "w").write("\n".join(nbody) + "\n")
PY

# Blocks that are not run unattended, recognised by their first command:
# the server itself and the examples (they run until stopped), interactive
# programs, the whole test suite (it runs this script), and the long
# checks that need tools from outside the repository.
skip_reason() {
    case "$1" in
    "cargo run --release") echo "starts the server and runs until stopped; checked by starting it" ;;
    "cargo run --example "*) echo "an example server or client; tests/examples.rs runs them" ;;
    telnet*|xdg-open*|open\ *) echo "interactive (telnet, a browser)" ;;
    "./scripts/test.sh"*|"scripts/test.sh"*) echo "runs the whole test suite, this script included" ;;
    "scripts/autobahn.sh"*|"./scripts/autobahn.sh"*) echo "takes minutes; scripts/test.sh runs it (--quick)" ;;
    "scripts/fuzz.sh"*|"./scripts/fuzz.sh"*|"cargo bench"*|"cargo fuzz"*) echo "long-running (fuzzing, benchmarks)" ;;
    *) return 1 ;;
    esac
}

# Checks that every expected line appears in the output, in order.
check_expect() {
    python3 - "$1" "$2" "$tcp_port" "$http_port" <<'PY'
import re, sys
expect = open(sys.argv[1], encoding="utf-8").read()
output = open(sys.argv[2], encoding="utf-8", errors="replace").read()
tcp, http = sys.argv[3], sys.argv[4]
got = [l.rstrip() for l in output.split("\n")]
at = 0
for line in expect.split("\n"):
    line = line.rstrip()
    if not line:
        continue
    pattern = "^" + ".*".join(re.escape(part) for part in line.split("…")) + "$"
    # The pages show the default ports; this server runs on others.
    pattern = pattern.replace("18001", f"(?:18001|{tcp})").replace("8080", f"(?:8080|{http})")
    while at < len(got) and not re.match(pattern, got[at]):
        at += 1
    if at == len(got):
        print(f"    expected line not found: {line}")
        sys.exit(1)
    at += 1
PY
}

total=0
failed=0
skipped=0
for script in "$work"/*.sh; do
    base=${script%.sh}
    where=$(cat "$base.where")
    text=$(sed -e '/^[[:space:]]*$/d' "$script")
    total=$((total + 1))
    first=$(sed -e 's/ *#.*//' -e '/^$/d' <<<"$text" | head -n1 | sed 's/ *$//')
    if reason=$(skip_reason "$first"); then
        skipped=$((skipped + 1))
        echo "skip $where: $reason"
        continue
    fi
    # Free ports instead of the defaults, the binary under test for the
    # build commands.
    sed -e "s/18001/$tcp_port/g" -e "s/8080/$http_port/g" \
        -e "s#\./target/release/duplex#\"\$DUPLEX_BIN\"#g" \
        -e "s#cargo run --release --#\"\$DUPLEX_BIN\"#g" "$script" >"$base.run"
    start=$(date +%s.%N)
    DUPLEX_BIN="$bin" timeout "$block_timeout" bash -eo pipefail "$base.run" >"$base.out" 2>&1 </dev/null
    status=$?
    took=$(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')")
    verdict=ok
    if [ "$status" -ne 0 ]; then
        verdict="FAILED (exit $status$([ "$status" -eq 124 ] && echo ", timed out after ${block_timeout}s"))"
    elif [ -f "$base.expect" ] && ! check_expect "$base.expect" "$base.out" >"$base.why"; then
        verdict="FAILED (output differs)"
    fi
    echo "$([ "$verdict" = ok ] && echo "ok  " || echo "FAIL") $where (${took}s)"
    if [ "$verdict" != ok ]; then
        failed=$((failed + 1))
        echo "    $verdict"
        [ -f "$base.why" ] && cat "$base.why"
        sed 's/^/    | /' "$script"
        echo "    output:"
        sed 's/^/    > /' "$base.out" | head -n 40
    elif [ "$verbose" = 1 ]; then
        sed 's/^/    > /' "$base.out"
    fi
done

# README's first block starts the server and shows its first line: check
# that line's shape here, since the block itself is not run.
if ! grep -Eq '^duplex listening tcp=127\.0\.0\.1:[0-9]+ http=127\.0\.0\.1:[0-9]+$' <<<"$banner"; then
    echo "FAIL the server's first line: $banner"
    failed=$((failed + 1))
fi

echo "check-docs: $total blocks, $((total - failed - skipped)) ok, $skipped skipped, $failed failed"
# Finding no block at all means the pages could not be read: not a pass.
if [ "$total" -eq 0 ]; then
    echo "check-docs: no \`\`\`sh block found in README.md or docs/" >&2
    exit 1
fi
[ "$failed" -eq 0 ]
