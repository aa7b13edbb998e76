#!/usr/bin/env bash
# The offline QA demo (www/demo): builds a static folder holding the page, its
# service worker, the npm package with the wasm engine, and an index folder
# (_ernie/), then serves it on http://127.0.0.1:${PORT:-8080}/ (Ctrl-C stops).
#
#   scripts/demo.sh [--index DIR] [--out DIR] [--no-serve] [--port N]
#                   [--corpus FILE] [--model FILE]
#
# Index: by default the NQ corpus, indexed like scripts/quickstart.sh but with
# the model bundled and int8 vectors (`ernie-search index <NQ corpus.jsonl>
# --model models/minilm-q8.gguf --out OUT/_ernie --bundle-model --dtype int8`;
# about 15 minutes on 2 cores, reused while corpus and model are the same;
# a hybrid weight tuned by quickstart in indexes/nq is carried over).
# --corpus/--model index another corpus or model that way. --index DIR
# copies an index folder built with --bundle-model instead (no CLI needed).
#
#   --out DIR     the folder to build (default target/demo)
#   --no-serve    stop after building
#   --port N      the port to serve on (default $PORT, else 8080)
#
# The CLI is $ERNIE_SEARCH_BIN, else ${CARGO_TARGET_DIR:-target}/release/ernie-search
# (built with cargo when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^set -e/{/^set -e/d;s/^# \{0,1\}//;p}' "$0"; }
fail() { echo "demo: $*" >&2; exit 1; }

out=target/demo
index=
serve=1
port="${PORT:-8080}"
NQ="${ERNIE_SEARCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ernie-search}/data/nq"
corpus="$NQ/corpus.jsonl"
model=models/minilm-q8.gguf
while [ $# -gt 0 ]; do
    case "$1" in
        --index) index="${2:?--index needs a folder}"; shift 2 ;;
        --out) out="${2:?--out needs a folder}"; shift 2 ;;
        --no-serve) serve=0; shift ;;
        --port) port="${2:?--port needs a number}"; shift 2 ;;
        --corpus) corpus="${2:?--corpus needs a file}"; shift 2 ;;
        --model) model="${2:?--model needs a file}"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "demo: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done
case "$out" in ""|/|.|..) fail "refusing to build into '$out'" ;; esac

# ---- the package: pkg/ with the wasm glue --------------------------------
if [ ! -f pkg/ernie_search_bg.wasm ] || [ ! -f pkg/ernie_search.js ]; then
    echo "== wasm package: pkg/ (scripts/build-wasm.sh)"
    bash scripts/build-wasm.sh
fi

# ---- the index: OUT/_ernie ------------------------------------------------
mkdir -p "$out"
# What OUT/_ernie was built from (reused only for the same), kept beside OUT:
# it names local paths, which a deployed folder must not.
stamp="${out%/}.index-source"
bundled() { grep -q '"model_file"' "$1/manifest.json" 2>/dev/null && grep -q '"lexical"' "$1/manifest.json"; }

if [ -n "$index" ]; then
    [ -f "$index/manifest.json" ] || fail "$index has no manifest.json: not an index folder"
    grep -q '"model_file"' "$index/manifest.json" \
        || fail "$index/manifest.json names no model_file: build the index with --bundle-model"
    src="index $(cd "$index" && pwd -P)"
    if [ "$(cd "$index" && pwd -P)" != "$(mkdir -p "$out/_ernie" && cd "$out/_ernie" && pwd -P)" ]; then
        echo "== index: copying $index to $out/_ernie"
        rm -rf "$out/_ernie"
        cp -R "$index" "$out/_ernie"
    fi
    echo "$src" > "$stamp"
else
    [ -n "${ERNIE_SEARCH_BIN:-}" ] && BIN="$ERNIE_SEARCH_BIN" || BIN="${CARGO_TARGET_DIR:-target}/release/ernie-search"
    [ -x "$BIN" ] || { echo "== CLI: cargo build --release -p ernie-search-cli"; cargo build --release -p ernie-search-cli; }
    if [ "$corpus" = "$NQ/corpus.jsonl" ] && [ ! -f "$corpus" ]; then "$BIN" fetch nq; fi
    if [ "$model" = models/minilm-q8.gguf ] && [ ! -f "$model" ]; then
        mkdir -p models
        "$BIN" fetch model
        "$BIN" convert --dtype q8_0 --out "$model"
    fi
    [ -f "$corpus" ] || fail "no corpus at $corpus"
    [ -f "$model" ] || fail "no model at $model"
    src="corpus $(cd "$(dirname "$corpus")" && pwd -P)/$(basename "$corpus") $(wc -c < "$corpus") model $(cd "$(dirname "$model")" && pwd -P)/$(basename "$model") $(wc -c < "$model") int8"
    # A folder built by hand (no stamp) is reused too; one from another source is not.
    have="$(cat "$stamp" 2>/dev/null || true)"
    if bundled "$out/_ernie" && { [ -z "$have" ] || [ "$have" = "$src" ]; }; then
        echo "== index: reusing $out/_ernie (delete it to rebuild)"
        echo "$src" > "$stamp"
    else
        alpha=()
        if [ "$corpus" = "$NQ/corpus.jsonl" ]; then
            # The weight scripts/quickstart.sh tuned on NQ dev, if it has run.
            a="$(python3 -c 'import json,sys; f=json.load(open(sys.argv[1])).get("fusion") or {}; print(f.get("alpha","") if f.get("method")=="convex" else "")' indexes/nq/manifest.json 2>/dev/null || true)"
            [ -n "$a" ] && alpha=(--alpha "$a") && echo "== hybrid weight from indexes/nq: alpha $a"
        fi
        echo "== index: $corpus -> $out/_ernie (int8, model bundled; NQ takes about 15 minutes on 2 cores)"
        rm -rf "$stamp" "$out/_ernie"
        "$BIN" index "$corpus" --model "$model" --out "$out/_ernie" --bundle-model --dtype int8 "${alpha[@]}"
        echo "$src" > "$stamp"
    fi
fi
bundled "$out/_ernie" || fail "$out/_ernie is not a bundled index folder with BM25 (manifest.json without model_file or lexical)"

# ---- the page, the service worker, the package ---------------------------
echo "== page: www/demo + pkg -> $out"
for f in "$out"/*; do
    [ "$f" = "$out/_ernie" ] || rm -rf "$f"
done
cp www/demo/index.html www/demo/demo.js www/demo/demo.css www/demo/sw.js "$out/"
mkdir -p "$out/pkg"
cp pkg/index.js pkg/worker.js pkg/text.js pkg/ernie_search.js pkg/ernie_search_bg.wasm "$out/pkg/"
# The service worker's cache is named after the files it keeps: any change
# to them makes a new cache, and visitors get the new files.
version="$(cd "$out" && cat index.html demo.js demo.css pkg/index.js pkg/worker.js pkg/text.js pkg/ernie_search.js pkg/ernie_search_bg.wasm | sha256sum | cut -c1-12)"
sed -i "s/^const VERSION = \"dev\";/const VERSION = \"$version\";/" "$out/sw.js"
grep -q "^const VERSION = \"$version\";" "$out/sw.js" || fail "could not stamp the version into $out/sw.js"
echo "demo: $out (service worker cache ernie-demo-$version; index: $(cat "$stamp"))"

[ "$serve" = 1 ] || exit 0
echo "serving $out on http://127.0.0.1:$port/ (Ctrl-C stops)"
exec python3 -m http.server "$port" --bind 127.0.0.1 --directory "$out"
