#!/usr/bin/env bash
# Runs every test: unit, property, integration (real sockets), examples,
# doc tests, and the headless-browser test of the built-in page.
# Installs what the browser test needs first (Chromium, playwright-core).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-browser.sh
export DUPLEX_REQUIRE_BROWSER=1
cargo test --all-targets
cargo test --doc
