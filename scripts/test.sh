#!/usr/bin/env bash
# Runs every test: unit, property, integration (real sockets), examples,
# doc tests, the headless-browser test of the built-in page, and the load
# tools' own tests (--workspace: they are a crate of their own, tools/).
# Installs what the browser test needs first (Chromium, playwright-core).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-browser.sh
export DUPLEX_REQUIRE_BROWSER=1
cargo test --workspace --all-targets
cargo test --workspace --doc
