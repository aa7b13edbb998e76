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
# Ours (the fused kernel, the default) and onnxruntime take turns, ROUNDS
# times (default 3): this machine's speed drifts by tens of percent within
# minutes, so the ratio is taken between medians of interleaved runs. Then
# candle's dense kernel on the Q8_0 file and on the f32 file (ours takes
# block-quantized files only), once each.
rounds=${ROUNDS:-3}
compact() { python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)))'; }
for r in $(seq "$rounds"); do
  "$BIN" bench encode --model models/minilm-q8.gguf --kernel fused --passages "$out/passages.jsonl" --batch 32 | tee -a "$res"
  "$VENV/bin/python" bench/peers.py encode --onnx-pkg-dir "$out/onnx" --passages "$out/passages.jsonl" --batch 32 --max-len 256 | compact | tee -a "$res"
done
"$BIN" bench encode --model models/minilm-q8.gguf --kernel dense --passages "$out/passages.jsonl" --batch 32 | tee -a "$res"
"$BIN" bench encode --model models/minilm-f32.gguf --passages "$out/passages.jsonl" --batch 32 | tee -a "$res"
python3 - "$res" <<'PY'
import json, statistics, sys
ours, ort = [], []
for line in open(sys.argv[1]):
    d = json.loads(line)
    if d.get("command") == "encode":
        ort.append((d["passages"]["passages_per_s"], d["query"]["median_ms"]))
    elif d.get("engine") == "ernie-search" and d.get("kernel", "").startswith("fused"):
        ours.append((d["passages_per_s"], d["query_ms_median"]))
med = lambda xs, i: statistics.median(x[i] for x in xs)
print(f"encode, medians of {len(ours)} interleaved rounds: ours {med(ours, 0):.1f} passages/s, query {med(ours, 1):.2f} ms; "
      f"onnxruntime {med(ort, 0):.1f} passages/s, query {med(ort, 1):.2f} ms; "
      f"ratio (median of the per-round ratios) {statistics.median(a[0] / b[0] for a, b in zip(ours, ort)):.2f}x passages/s, "
      f"{statistics.median(a[1] / b[1] for a, b in zip(ours, ort)):.2f}x query latency")
print("  per round (ours / onnxruntime): " + "; ".join(f"{a[0]:.1f} / {b[0]:.1f} p/s, {a[1]:.2f} / {b[1]:.2f} ms" for a, b in zip(ours, ort)))
PY
for d in f32 int8; do
  "$BIN" bench scan --n 100000 --dim 384 --dtype $d --queries 100 | tee -a "$res"
done
"$VENV/bin/python" bench/peers.py scan --n 100000 --dim 384 --k 10 --queries 100 --threads 1 | tee -a "$res"
echo "results in $res"
