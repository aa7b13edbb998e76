#!/usr/bin/env bash
# Training speed, ours vs sentence-transformers, in one run: samples/s of
# forward + backward + AdamW on the same batch shape (16 queries x 32 tokens,
# each with a positive and a hard negative of 192 tokens, in-batch negatives).
# Ours trains DE + LI (+ KL) on one encoder; the peer trains the DE with
# MultipleNegativesRankingLoss. Runs alternate (ours, peer, ours, peer) so
# load on a shared machine hits both alike.
#   ST_VENV=/tmp/st-venv STEPS=10 bash bench/train.sh
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-10}
VENV=${ST_VENV:-/tmp/st-venv}
if [ ! -x "$VENV/bin/python" ]; then
  # PyPI's Linux torch needs its nvidia-* libraries even on the CPU (~5 GB).
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q torch==2.15.0 sentence-transformers==6.2.0 transformers==5.24.0
fi
bin=${CARGO_TARGET_DIR:-target}/release/ernie-search
cargo build --release -q -p ernie-search-cli
model=$("$bin" fetch model 2>&1 | grep -o '/[^ ]*all-MiniLM-L6-v2' | head -1)
for round in 1 2; do
  "$bin" bench train --steps "$STEPS" --batch 16 --query-len 32 --passage-len 192 | sed "s/^/{\"round\":$round,\"engine\":\"ernie-search\",\"r\":/; s/$/}/"
  "$VENV/bin/python" bench/st_train.py --model "$model" --steps "$STEPS" | sed "s/^/{\"round\":$round,\"engine\":\"sentence-transformers\",\"r\":/; s/$/}/"
done
