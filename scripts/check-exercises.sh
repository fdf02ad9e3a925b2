#!/usr/bin/env bash
# Confirms that the checks of docs/exercises.md (tests/exercises.rs, left
# out of the default run) are real, both ways:
#
# 1. on the code as it is, every check fails: there is something to do;
# 2. in a temporary copy with the reference solutions applied in order
#    (exercises/solutions/*.patch), every check passes: it can be done.
#
# The copy builds into target/exercises, kept between runs, so only the
# first run builds the dependencies. Called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

solutions=(exercises/solutions/*.patch)
declared=$(grep -c '^fn exercise_' tests/exercises.rs)
if [ "${#solutions[@]}" -ne "$declared" ]; then
    echo "check-exercises: ${#solutions[@]} solutions for $declared exercises" >&2
    exit 1
fi

log=$(mktemp)
copy=$(mktemp -d)
trap 'rm -rf "$log" "$copy"' EXIT

# "test result: FAILED. P passed; F failed; ..." -> "P F"
counts() {
    sed -n 's/^test result: [A-Za-z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' "$1" | tail -n 1
}

cargo test --test exercises -- --ignored >"$log" 2>&1 || true
read -r passed failed <<<"$(counts "$log")"
if [ "${passed:-x}" != 0 ] || [ "${failed:-x}" != "$declared" ]; then
    grep -E '^test |test result' "$log" >&2 || cat "$log" >&2
    echo "check-exercises: on today's code, $declared checks should fail; passed ${passed:-?}, failed ${failed:-?}" >&2
    exit 1
fi
echo "check-exercises: today's code fails all $declared checks"

git ls-files -z | xargs -0 cp --parents -t "$copy"
(
    cd "$copy"
    for patch in "${solutions[@]}"; do
        git apply "$patch"
    done
)
CARGO_TARGET_DIR="$root/target/exercises" cargo test --manifest-path "$copy/Cargo.toml" \
    --test exercises -- --ignored >"$log" 2>&1 || true
read -r passed failed <<<"$(counts "$log")"
if [ "${passed:-x}" != "$declared" ] || [ "${failed:-x}" != 0 ]; then
    cat "$log" >&2
    echo "check-exercises: with the reference solutions, $declared checks should pass; passed ${passed:-?}, failed ${failed:-?}" >&2
    exit 1
fi
echo "check-exercises: the reference solutions pass all $declared checks"
