#!/usr/bin/env bash
# End-to-end browser test of the npm package in pkg/ (Retriever in a Web
# Worker, the <ernie-search-box> widget) and of the offline QA demo (www/demo)
# in headless Chromium, over an index folder built by the CLI
# (tests/browser/make_site.sh), and of hostile copies of that folder (names
# outside it, files cut short, too long or crafted). See tests/browser/e2e.mjs,
# hostile.mjs and demo.mjs.
#
#   scripts/test-e2e.sh [--no-build]
#
# --no-build: the wasm fixture, the CLI and pkg/ are already built (as after
# scripts/test-browser.sh's own steps; ERNIE_SEARCH_BIN may name the CLI).
# Needs what scripts/test-browser.sh needs; writes target/e2e-site (the site),
# target/e2e/widget.png, target/e2e-hostile (the hostile variants),
# target/e2e-vite (a Vite build of tests/browser/vite-app), target/e2e-demo
# (the demo) and target/e2e/demo.png.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
fixture=target/wasm-fixture
site=target/e2e-site
bin="${ERNIE_SEARCH_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/ernie-search}"
t_start=$SECONDS

case "${1:-}" in
    --no-build) build=0 ;;
    "") build=1 ;;
    *) echo "usage: scripts/test-e2e.sh [--no-build]" >&2; exit 2 ;;
esac

if [ "$build" = 1 ]; then
    echo "== fixture (native): $fixture"
    cargo run --release --example wasm_fixture -- "$fixture"
    [ -x "$bin" ] || cargo build --release -p ernie-search-cli
    echo "== wasm package: pkg/"
    scripts/build-wasm.sh
    scripts/build-wasm.sh --light
fi

echo "== node dependencies: tests/browser"
command -v node >/dev/null || { echo "test-e2e: node is not installed" >&2; exit 1; }
[ -d tests/browser/node_modules/vite ] \
    || (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)

echo "== site: $site"
ERNIE_SEARCH_BIN="$bin" tests/browser/make_site.sh "$site"

echo "== npm package and widget in Chromium"
node tests/browser/e2e.mjs --site "$site" --out target/e2e

echo "== the light engine (token table, vectors by cluster) in Chromium"
node tests/browser/light.mjs --site "$site"

echo "== hostile index folders in Chromium"
node tests/browser/hostile.mjs --site "$site" --out target/e2e-hostile

echo "== the package in a Vite app (dev server and production build)"
node tests/browser/vite.mjs --site "$site"

echo "== the offline QA demo (www/demo, scripts/demo.sh) in Chromium"
node tests/browser/demo.mjs --site "$site" --demo target/e2e-demo --out target/e2e
echo "test-e2e: total $((SECONDS - t_start))s"
