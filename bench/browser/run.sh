#!/usr/bin/env bash
# Head to head in one headless Chromium run (issue 6 part 6):
#   retrieval: ernie-search's npm API (hybrid) vs Pagefind's JS API over the
#              same static site, one page per NQ passage, on the NQ dev questions;
#   encoding:  ernie-search's wasm Engine vs Transformers.js (wasm backend) on
#              the same model (all-MiniLM-L6-v2, 8-bit weights).
# Writes OUT/results.json, TREC run files re-scored by pytrec_eval, and prints
# a markdown table.
#
#   bash bench/browser/run.sh [--data nq|wiki] [--subset N] [--queries N] [--encode-queries N]
#
#   --data SET          the fetched BEIR set the site is made of (default nq;
#                       wiki: `ernie-search fetch wiki`, when NQ cannot be fetched)
#   --subset N          a site of N passages (the dev-judged ones first) in
#                       target/h2h/sub<N>/, to try the harness quickly; default:
#                       the whole corpus (13,515 pages) in target/h2h/
#   --queries N         the first N dev questions (default: all 1,785; with
#                       --subset, only questions with a judged passage on the site)
#   --encode-queries N  questions timed in the encoding comparison (default 200;
#                       0: no encoding comparison, and no ONNX model or
#                       Transformers.js needed)
#
# Environment (defaults are this repository's own build outputs):
#   ERNIE_BIN   ernie-search CLI (target/release/ernie-search)
#   MODEL       Q8_0 model (models/minilm-q8.gguf)
#   ONNX_DIR    int8 ONNX of the same model + tokenizer.json (target/bench/onnx;
#               python bench/peers.py fetch-onnx --dest DIR --with-tokenizer)
#   HF_DIR      the model's Hugging Face folder, for config.json and
#               tokenizer_config.json (CACHE/models/all-MiniLM-L6-v2, from `ernie-search fetch model`)
#   PEERS_VENV  venv with bench/requirements.txt (pytrec_eval) (target/bench/venv)
#   CHROMIUM    browser (/usr/bin/chromium)
#
# The full site's ernie-search index (index-site: embeds every passage, about
# 15-25 minutes on 2 cores) and Pagefind index are built once and reused while
# SITE/_ernie/manifest.json and SITE/pagefind/pagefind.js exist.
set -euo pipefail
cd "$(dirname "$0")/../.."

set_name=nq
subset=0
queries=0
encode_queries=200
while [ $# -gt 0 ]; do
  case "$1" in
    --data) set_name=$2; shift 2 ;;
    --subset) subset=$2; shift 2 ;;
    --queries) queries=$2; shift 2 ;;
    --encode-queries) encode_queries=$2; shift 2 ;;
    *) echo "run.sh: unknown argument $1 (use --data SET, --subset N, --queries N, --encode-queries N)" >&2; exit 2 ;;
  esac
done

CACHE=${ERNIE_SEARCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ernie-search}
BIN=${ERNIE_BIN:-target/release/ernie-search}
MODEL=${MODEL:-models/minilm-q8.gguf}
ONNX_DIR=${ONNX_DIR:-target/bench/onnx}
HF_DIR=${HF_DIR:-$CACHE/models/all-MiniLM-L6-v2}
VENV=${PEERS_VENV:-target/bench/venv}
DATA=$CACHE/data/$set_name
need() { [ -e "$1" ] || { echo "run.sh: $2 not found at $1" >&2; exit 2; }; }
need "$BIN" "the ernie-search CLI (cargo build --release -p ernie-search-cli, or set ERNIE_BIN)"
need "$MODEL" "the Q8_0 model (ernie-search convert --dtype q8_0 --out models/minilm-q8.gguf, or set MODEL)"
if [ "$encode_queries" != 0 ]; then
  need "$ONNX_DIR/model.onnx" "the int8 ONNX model (bench/peers.py fetch-onnx --dest $ONNX_DIR --with-tokenizer, or set ONNX_DIR)"
  need "$ONNX_DIR/tokenizer.json" "the ONNX model's tokenizer.json"
  need "$HF_DIR/config.json" "the model's config.json (ernie-search fetch model, or set HF_DIR)"
fi
need "$DATA/qrels/dev.tsv" "the $set_name set (ernie-search fetch $set_name)"
need "$VENV/bin/python" "the peers venv with pytrec_eval (python3 -m venv $VENV && $VENV/bin/pip install -r bench/requirements.txt, or set PEERS_VENV)"
for f in ernie_search.js ernie_search_bg.wasm ernie_search_light.js ernie_search_light_bg.wasm; do
  need "pkg/$f" "the wasm glue (bash scripts/build-wasm.sh and bash scripts/build-wasm.sh --light)"
done

# Pinned npm packages: Pagefind (its Linux binary ships in @pagefind/linux-x64),
# Transformers.js with onnxruntime-web, playwright-core. No install scripts:
# nothing may download a binary of its own.
if [ ! -d bench/browser/node_modules/pagefind ] || [ ! -d bench/browser/node_modules/playwright-core ]; then
  (cd bench/browser && npm ci --ignore-scripts --no-audit --no-fund)
fi

# Wall time and peak memory of the index builds, where GNU time is installed.
timed() { if [ -x /usr/bin/time ]; then /usr/bin/time -f "$1 wall %e s, max RSS %M KB" "${@:2}"; else "${@:2}"; fi; }

out=target/h2h/$set_name
if [ "$subset" -gt 0 ]; then out=$out/sub$subset; fi
site=$out/site
mkdir -p "$out"

if [ ! -f "$site/_ernie/manifest.json" ]; then
  echo "== site: one page per passage in $site"
  if [ "$subset" -gt 0 ]; then
    node bench/browser/make_site.mjs --corpus "$DATA/corpus.jsonl" --out "$site" --subset "$subset" --qrels "$DATA/qrels/dev.tsv"
  else
    node bench/browser/make_site.mjs --corpus "$DATA/corpus.jsonl" --out "$site"
  fi
  echo "== ernie-search index-site (log: $out/index-site.log)"
  timed index-site "$BIN" index-site "$site" --model "$MODEL" --assets pkg 2>&1 | tee "$out/index-site.log"
fi
# The widget and wasm files index-site copied must be this build's (the
# scripts minified, from pkg/min/, as a site owner's index-site copies them).
for f in index.js worker.js ernie_search.js ernie_search_bg.wasm ernie_search_light.js ernie_search_light_bg.wasm; do
  src=pkg/$f
  [ "${f%.js}" != "$f" ] && [ -f "pkg/min/$f" ] && [ ! "pkg/min/$f" -ot "pkg/$f" ] && src=pkg/min/$f
  cmp -s "$src" "$site/_ernie/$f" || { echo "run.sh: $site/_ernie/$f differs from $src: delete $site/_ernie and run again" >&2; exit 2; }
done
if [ ! -f "$site/pagefind/pagefind.js" ]; then
  echo "== pagefind (log: $out/pagefind.log)"
  (cd bench/browser && timed pagefind node_modules/.bin/pagefind --site "../../$site") 2>&1 | tee "$out/pagefind.log"
fi

tjs_args=()
if [ "$encode_queries" != 0 ]; then
  # Transformers.js's local model layout: <name>/{config.json, tokenizer*.json, onnx/model_quantized.onnx}.
  tjs=target/h2h/tjs-models/all-MiniLM-L6-v2
  mkdir -p "$tjs/onnx"
  cp "$HF_DIR/config.json" "$HF_DIR/tokenizer_config.json" "$tjs/"
  cp "$ONNX_DIR/tokenizer.json" "$tjs/"
  cmp -s "$ONNX_DIR/model.onnx" "$tjs/onnx/model_quantized.onnx" || cp "$ONNX_DIR/model.onnx" "$tjs/onnx/model_quantized.onnx"
  tjs_args=(--tjs-models target/h2h/tjs-models)
fi

echo "== headless Chromium: Pagefind vs ernie-search, Transformers.js vs ernie-search"
node bench/browser/h2h.mjs --site "$site" --out "$out" --data "$DATA" --queries "$queries" \
  --encode-queries "$encode_queries" "${tjs_args[@]}" --subset "$subset"

echo "== pytrec_eval re-score of the run files"
for s in ernie ernie-full pagefind pagefind-kw; do
  "$VENV/bin/python" bench/peers.py trec-eval --qrels "$out/qrels.tsv" --run "$out/$s.trec" > "$out/$s.pytrec.json"
done
node bench/browser/report.mjs "$out"
