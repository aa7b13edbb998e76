#!/usr/bin/env bash
# Ours and the peers in one run, on this machine: encode (Q8_0 and f32 vs the
# int8 ONNX of the same model on onnxruntime) and top-10 scan over 100k x 384
# (f32 and int8 vs faiss-cpu IndexFlatIP and the copy-bandwidth floor).
# Writes target/bench/results.jsonl (JSON objects, one per measurement; the peers pretty-print).
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/bench
mkdir -p "$out" models
BIN="${CARGO_TARGET_DIR:-target}/release/ernie-search"
VENV=${PEERS_VENV:-$out/venv}

cargo build --release -p ernie-search-cli
"$BIN" fetch model >/dev/null
# NQ's package (bigbench==1.0.0) is gone from PyPI: the wiki set stands in.
set_name=nq
"$BIN" fetch nq >/dev/null 2>&1 || { set_name=wiki; "$BIN" fetch wiki >/dev/null; }
[ -f models/minilm-q8.gguf ] || "$BIN" convert --dtype q8_0 --out models/minilm-q8.gguf >/dev/null
[ -f models/minilm-f32.gguf ] || "$BIN" convert --dtype f32 --out models/minilm-f32.gguf >/dev/null
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r bench/requirements.txt
fi
[ -f "$out/onnx/model.onnx" ] || "$VENV/bin/python" bench/peers.py fetch-onnx --dest "$out/onnx" --with-tokenizer >/dev/null

# 320 passages cut to their first 120 words: the same file for every engine.
CACHE=${ERNIE_SEARCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ernie-search}
python3 - "$CACHE/data/$set_name/corpus.jsonl" "$out/passages.jsonl" <<'PY'
import json, sys
src, dst = sys.argv[1], sys.argv[2]
rows = []
for line in open(src):
    d = json.loads(line)
    words = d["text"].split(" ")
    if len(words) >= 120:
        rows.append({"id": d["_id"], "text": " ".join(words[:120])})
    if len(rows) == 320:
        break
with open(dst, "w") as f:
    for r in rows:
        f.write(json.dumps(r) + "\n")
PY

res=$out/results.jsonl
: > "$res"
# Our fused kernel (the default) and candle's dense one on the Q8_0 file;
# the f32 file runs candle's dense kernel (ours takes block-quantized files).
for k in fused dense; do
  "$BIN" bench encode --model models/minilm-q8.gguf --kernel $k --passages "$out/passages.jsonl" --batch 32 | tee -a "$res"
done
"$BIN" bench encode --model models/minilm-f32.gguf --passages "$out/passages.jsonl" --batch 32 | tee -a "$res"
"$VENV/bin/python" bench/peers.py encode --onnx-pkg-dir "$out/onnx" --passages "$out/passages.jsonl" --batch 32 --max-len 256 | tee -a "$res"
for d in f32 int8; do
  "$BIN" bench scan --n 100000 --dim 384 --dtype $d --queries 100 | tee -a "$res"
done
"$VENV/bin/python" bench/peers.py scan --n 100000 --dim 384 --k 10 --queries 100 --threads 1 | tee -a "$res"
echo "results in $res"
