#!/usr/bin/env bash
# Builds the site the end-to-end tests (e2e.mjs) serve: one self-contained
# index folder, SITE/_ernie, with the tiny model bundled, and the same
# passages in the light layout (token table, vectors by cluster) at
# SITE/light/_ernie for light.mjs.
#
#   tests/browser/make_site.sh [SITE]      (default: target/e2e-site)
#
# Corpus: the wasm fixture's passages (target/wasm-fixture/passages.json, from
# `cargo run --release --example wasm_fixture`, which must have run) plus
# passages of our own: a multi-sentence one and hostile markup (XSS probes).
# Needs the CLI; ERNIE_SEARCH_BIN overrides where it is looked for.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
site="${1:-target/e2e-site}"
fixture=target/wasm-fixture
bin="${ERNIE_SEARCH_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/ernie-search}"

fail() { echo "make_site: $*" >&2; exit 1; }
[ -f "$fixture/passages.json" ] && [ -f "$fixture/tiny.gguf" ] \
    || fail "$fixture is incomplete; run: cargo run --release --example wasm_fixture -- $fixture"
[ -x "$bin" ] || fail "no CLI at $bin; run: cargo build --release -p ernie-search-cli"

mkdir -p "$site"
corpus="$site/corpus.jsonl"
node - "$fixture/passages.json" "$corpus" <<'EOF'
const fs = require("node:fs");
const [src, out] = process.argv.slice(2);
const lines = JSON.parse(fs.readFileSync(src, "utf8")).map((p) => ({ id: p.id, title: `Passage ${p.id}`, text: p.text, url: `#${p.id}` }));
lines.push(
  {
    id: "lighthouse",
    title: "The lighthouse keeper",
    text: "Lighthouses guide ships along the coast at night. Every evening the keeper climbs the spiral tower to light the lamp. Winter storms test the thick glass.",
    url: "#lighthouse",
  },
  { id: "xss-img", title: '<b onmouseover="window.__xss=3">Markup</b> in a title', text: '<img src=x onerror="window.__xss=1">', url: "#xss-img" },
  { id: "xss-script", title: "Script probe", text: "<script>window.__xss=2</script>", url: "#xss-script" },
  // A result url must never run as script when followed.
  { id: "xss-url", title: "Javascript url probe", text: "javascript url probe passage", url: "javascript:window.__xss=4" },
);
fs.writeFileSync(out, lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
EOF

"$bin" index "$corpus" --model "$fixture/tiny.gguf" --out "$site/_ernie" --bundle-model --block-kib 1 --shard-size 8
# The light layout index-site writes (token table, vectors by cluster), for light.mjs.
"$bin" index "$corpus" --model "$fixture/tiny.gguf" --out "$site/light/_ernie" --bundle-model --block-kib 1 --shard-size 8 \
    --vectors clusters --clusters 6 --nprobe 2 --dtype int8
