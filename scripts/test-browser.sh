#!/usr/bin/env bash
# End-to-end browser check: the wasm build in headless Chromium must match the
# native library (embeddings, top-10 rankings) and refuse bad input clearly.
#
#   scripts/test-browser.sh
#
# Needs what scripts/build-wasm.sh needs, plus node/npm and Chromium at
# /usr/bin/chromium (or CHROMIUM=/path/to/chromium). playwright-core only
# drives that browser; it never downloads one.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
fixture=target/wasm-fixture
t_start=$SECONDS

echo "== fixture (native): $fixture"
t0=$SECONDS
cargo run --release --example wasm_fixture -- "$fixture"
echo "test-browser: fixture $((SECONDS - t0))s"

echo "== wasm package: pkg/ (the full build, then the light one beside it)"
scripts/build-wasm.sh
scripts/build-wasm.sh --light

echo "== node dependencies: tests/browser"
command -v node >/dev/null || { echo "test-browser: node is not installed" >&2; exit 1; }
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
(
    cd tests/browser
    if [ -f package-lock.json ]; then
        npm ci --no-audit --no-fund --loglevel=error
    else
        npm install --no-audit --no-fund --loglevel=error
    fi
)

echo "== parity in Chromium"
node tests/browser/wasm_parity.mjs --fixture "$fixture"

echo "== the threaded build on a cross-origin isolated page"
node tests/browser/threads.mjs --fixture "$fixture"

echo "== npm package and widget: scripts/test-e2e.sh"
scripts/test-e2e.sh --no-build
echo "test-browser: total $((SECONDS - t_start))s"
