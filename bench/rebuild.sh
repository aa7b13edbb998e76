#!/usr/bin/env bash
# Incremental rebuild (BENCHMARKS.md, "Incremental rebuild"): a full `index`
# build with an empty embedding cache, then the same corpus with 10 passages
# edited (a sentence put before their text) built against the cache the first
# run left. Prints both runs' wall time and what each command reported.
#
#   bash bench/rebuild.sh [CORPUS] [MODEL]
#
# CORPUS defaults to the fetched wiki set (`ernie-search fetch wiki`), MODEL
# to models/minilm-q8.gguf. Works in target/rebuild/ (cache, corpora,
# indexes); the token table's encoder rows are copied from your cache folder
# when there (computing them is a once-per-model cost, not a rebuild's).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${ERNIE_SEARCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ernie-search}
CORPUS=${1:-$CACHE/data/wiki/corpus.jsonl}
MODEL=${2:-models/minilm-q8.gguf}
BIN=${ERNIE_BIN:-target/release/ernie-search}
for f in "$CORPUS" "$MODEL" "$BIN"; do
  [ -e "$f" ] || { echo "rebuild.sh: $f not found (fetch the set, convert the model, build the CLI)" >&2; exit 2; }
done
W=target/rebuild
rm -rf "$W"
mkdir -p "$W/cache"
[ -d "$CACHE/tables" ] && cp -r "$CACHE/tables" "$W/cache/"

# Every 1000th passage from the 18th on, ten of them, gets a sentence in front:
# each of their windows changes.
python3 - "$CORPUS" "$W/edited.jsonl" <<'EOF'
import json, sys
src, out = sys.argv[1], sys.argv[2]
edited = 0
with open(src, encoding="utf-8") as f, open(out, "w", encoding="utf-8") as o:
    for i, line in enumerate(f):
        d = json.loads(line)
        if i % 1000 == 17 and edited < 10:
            d["text"] = "This page was edited on the sixth of December. " + d["text"]
            edited += 1
        o.write(json.dumps(d, ensure_ascii=False) + "\n")
print(f"rebuild.sh: {edited} passages edited", file=sys.stderr)
EOF

run() {
  local name=$1 corpus=$2 t0
  t0=$EPOCHREALTIME
  "$BIN" index "$corpus" --model "$MODEL" --out "$W/$name" --cache-dir "$W/cache" >"$W/$name.log" 2>&1
  echo "$name: $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s wall"
  grep -E "^(embeddings|token table|  time)" "$W/$name.log" | sed 's/^/  /'
}
run full "$CORPUS"
run edited "$W/edited.jsonl"
