#!/usr/bin/env bash
# Dense, BM25 and hybrid retrieval on the NQ and DROP dev and test splits
# (whole corpora), beside bm25s (PyPI) in the same run, with our run files
# re-scored by pytrec_eval. The hybrid weight is tuned on dev only, so the
# test rows are held out. Writes target/bench/hybrid/*.json and *.trec.
#
#   bash bench/hybrid.sh [MODEL.gguf]      # default models/minilm-q8.gguf
#
# About 30 minutes on the 2-core development machine (encoding ~19k windows).
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/bench/hybrid
mkdir -p "$out" models
BIN="${CARGO_TARGET_DIR:-target}/release/ernie-search"
VENV=${PEERS_VENV:-target/bench/venv}
MODEL=${1:-models/minilm-q8.gguf}
CACHE=${ERNIE_SEARCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ernie-search}

cargo build --release -p ernie-search-cli
"$BIN" fetch model >/dev/null
"$BIN" fetch all >/dev/null
[ -f models/minilm-q8.gguf ] || "$BIN" convert --dtype q8_0 --out models/minilm-q8.gguf >/dev/null
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r bench/requirements.txt
fi

for set in drop nq; do
  for split in dev test; do
    "$VENV/bin/python" bench/peers.py bm25 --data "$CACHE/data/$set" --split "$split" \
      --run "$out/bm25s.$set.$split.trec" > "$out/bm25s.$set.$split.json"
    echo "bm25s $set $split: $(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["scores"]; print(" ".join(f"{k} {v:.3f}" for k,v in s.items()))' "$out/bm25s.$set.$split.json")"
  done
  "$BIN" eval --model "$MODEL" --data "$set" --split dev,test --tune-split dev \
    --run-prefix "$out/ours.$set" --json > "$out/ours.$set.json"
  for split in dev test; do
    for mode in dense lexical hybrid-rrf hybrid; do
      "$VENV/bin/python" bench/peers.py trec-eval --qrels "$CACHE/data/$set/qrels/$split.tsv" \
        --run "$out/ours.$set.$split.$mode.trec" > "$out/pytrec.$set.$split.$mode.json"
    done
  done
done

python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
keys = ["mrr_10", "recall_1", "recall_5", "recall_20", "recall_100", "ndcg_10"]
print("| set | split | system | MRR@10 | R@1 | R@5 | R@20 | R@100 | nDCG@10 | pytrec_eval MRR@10 |")
print("|---|---|---|---|---|---|---|---|---|---|")
for s in ["nq", "drop"]:
    ours = json.load(open(f"{out}/ours.{s}.json"))
    for split in ["dev", "test"]:
        b = json.load(open(f"{out}/bm25s.{s}.{split}.json"))["scores"]
        print(f"| {s} | {split} | bm25s (k1 1.5, b 0.75) | " + " | ".join(f"{b[k]:.3f}" for k in keys) + " | |")
        for mode, row in ours["splits"][split]["modes"].items():
            p = json.load(open(f"{out}/pytrec.{s}.{split}.{mode}.json"))["scores"]["mrr_10"]
            name = {"hybrid": f"ours hybrid (convex, alpha {ours['alpha']:.2f} {ours['alpha_source']})"}.get(mode, f"ours {mode}")
            print(f"| {s} | {split} | {name} | " + " | ".join(f"{row[k]:.3f}" for k in keys) + f" | {p:.3f} |")
    print(f"<!-- {s}: {ours['passages']} passages, {ours['vectors']} vectors ({ours['windowed']} in windows, overlap {ours['overlap']}), encode {ours['encode_seconds']:.0f}s, total {ours['total_seconds']:.0f}s -->")
PY
