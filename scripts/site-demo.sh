#!/usr/bin/env bash
# The static-site flow on the sample site in www/site: build the wasm package
# (both engines) and the CLI that embeds them, index a copy of the site with
# the one command a site owner runs (`ernie-search index-site PUBLIC_DIR`:
# the default model is fetched and converted into the cache on first use),
# and serve it on http://127.0.0.1:${PORT:-8000}/ (Ctrl-C stops). With
# --no-serve it stops after indexing.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${CARGO_TARGET_DIR:-target}/release/ernie-search"
SITE=target/www-site

bash scripts/setup.sh   # the wasm toolchain (no-op when present)
[ -f pkg/ernie_search_bg.wasm ] || bash scripts/build-wasm.sh
[ -f pkg/ernie_search_light_bg.wasm ] || bash scripts/build-wasm.sh --light
cargo build --release -p ernie-search-cli   # embeds pkg/ (cli/build.rs)
rm -rf "$SITE"
cp -r www/site "$SITE"
"$BIN" index-site "$SITE"
[ "${1:-}" = "--no-serve" ] && exit 0
echo "serving $SITE on http://127.0.0.1:${PORT:-8000}/"
exec python3 -m http.server "${PORT:-8000}" --bind 127.0.0.1 --directory "$SITE"
