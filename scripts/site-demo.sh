#!/usr/bin/env bash
# The static-site flow on the sample site in www/site: build the wasm package
# and the CLI, index a copy of the site with the Q8_0 model into _ernie/, and
# serve it on http://127.0.0.1:${PORT:-8000}/ (Ctrl-C stops). With --no-serve
# it stops after indexing (tests use that).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${CARGO_TARGET_DIR:-target}/release/ernie-search"
SITE=target/www-site

cargo build --release -p ernie-search-cli
[ -f pkg/ernie_search_bg.wasm ] || bash scripts/build-wasm.sh
mkdir -p models
if [ ! -f models/minilm-q8.gguf ]; then
  "$BIN" fetch model
  "$BIN" convert --dtype q8_0 --out models/minilm-q8.gguf
fi
rm -rf "$SITE"
cp -r www/site "$SITE"
"$BIN" index-site "$SITE" --model models/minilm-q8.gguf
[ "${1:-}" = "--no-serve" ] && exit 0
echo "serving $SITE on http://127.0.0.1:${PORT:-8000}/"
exec python3 -m http.server "${PORT:-8000}" --bind 127.0.0.1 --directory "$SITE"
