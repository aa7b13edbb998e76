#!/usr/bin/env bash
# Pack what scripts/gpu-run.sh needs on the device machine (issue 22), here,
# where the registries are: the trainer binary, all-MiniLM-L6-v2 with its
# weights in f16 (90.9 MB in f32 would not fit), and the retrieval set (NQ when
# it can be fetched, else wiki). One xz archive under .gpu/ (ignored by git),
# checked to fit the device call's 64 MiB with room for the working tree.
#
#   bash scripts/gpu-pack.sh                 # CUDA binary (scripts/build-cuda.sh)
#   bash scripts/gpu-pack.sh --cpu           # this machine's CPU binary: for the dry run
#   bash scripts/gpu-pack.sh --wgsl          # instead: examples/gpu_bench and the Q8_0 model,
#                                            # .gpu/wgsl.tar.xz for scripts/gpu-wgsl.sh
#   options: --bin FILE (ernie-search, or with --wgsl gpu_bench) --model DIR --data DIR
#            --gguf FILE|none --out DIR (default .gpu)
# Then, with the device tool: carry [".gpu"], command `bash scripts/gpu-run.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="" model="" data="" gguf=models/minilm-q8.gguf out=.gpu cpu=0 wgsl=0 kind=given
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) cpu=1 ;;
    --wgsl) wgsl=1 ;;
    --gguf) gguf=$2; shift ;;
    --bin) bin=$2; shift ;;
    --model) model=$2; shift ;;
    --data) data=$2; shift ;;
    --out) out=$2; shift ;;
    *) echo "gpu-pack: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
# GPU_PACK_XZ_LEVEL (6): xz's level (the tests' dry run packs at 0).
# What travels besides the archive (the tracked tree) must fit too.
LIMIT_MB=${GPU_PACK_LIMIT_MB:-56}

# xz-compress the folder $1 into $2, and refuse a result over the limit.
archive() {
  mkdir -p "$(dirname "$2")"
  rm -f "$2"
  tar -C "$1" -cf - . | xz -T0 "-${GPU_PACK_XZ_LEVEL:-6}" > "$2"
  local size
  size=$(stat -c %s "$2")
  echo "packed $2: $((size / 1048576)) MiB"
  if [ "$size" -gt $((LIMIT_MB * 1048576)) ]; then
    echo "gpu-pack: $((size / 1048576)) MiB is over the ${LIMIT_MB} MiB left for it in one device call (64 MiB with the tree)" >&2
    exit 3
  fi
}

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

if [ "$wgsl" = 1 ]; then
  if [ -z "$bin" ]; then
    cargo build --release -q --example gpu_bench
    bin=${CARGO_TARGET_DIR:-target}/release/examples/gpu_bench
  fi
  cp "$bin" "$stage/gpu_bench"
  # --gguf none: no model (a dry run then encodes with gpu_bench's tiny synthetic one).
  if [ "$gguf" != none ]; then
    [ -f "$gguf" ] || { echo "gpu-pack: no model file $gguf (README: ernie-search convert --dtype q8_0 --out $gguf)" >&2; exit 2; }
    cp "$gguf" "$stage/minilm-q8.gguf"
  fi
  archive "$stage" "$out/wgsl.tar.xz"
  exit 0
fi

# This machine's CPU binary: packed with --cpu, and the one that fetches (the
# CUDA binary needs the driver's libcuda to start).
cpu_bin=${CARGO_TARGET_DIR:-target}/release/ernie-search
if [ "$cpu" = 1 ] || [ -z "$model" ] || [ -z "$data" ]; then
  cargo build --release -q -p ernie-search-cli
fi
if [ -z "$bin" ]; then
  if [ "$cpu" = 1 ]; then
    bin=$cpu_bin kind=cpu
  else
    bash scripts/build-cuda.sh
    bin=${CARGO_TARGET_DIR:-target-cuda}/release/ernie-search kind=cuda
  fi
fi
[ -x "$bin" ] || { echo "gpu-pack: no binary at $bin" >&2; exit 2; }
fetch() { "$cpu_bin" fetch "$1" | sed -n "s/^$1: //p"; }
[ -n "$model" ] || model=$(fetch model)
if [ -z "$data" ]; then
  data=$(fetch nq 2> /dev/null || true)
  [ -n "$data" ] || data=$(fetch wiki)
fi
for f in "$model/model.safetensors" "$model/config.json" "$model/tokenizer.json" "$data/corpus.jsonl" "$data/queries.jsonl"; do
  [ -f "$f" ] || { echo "gpu-pack: $f is missing" >&2; exit 2; }
done

mkdir -p "$stage/bin" "$stage/model" "$stage/data"
cp "$bin" "$stage/bin/ernie-search"
python3 scripts/f16_safetensors.py "$model/model.safetensors" "$stage/model/model.safetensors"
# The rest of the checkpoint folder (sentence-transformers reads modules.json
# and 1_Pooling/ too); never another weights file.
(cd "$model" && find . -type f \( -name '*.json' -o -name '*.txt' \) -exec cp --parents {} "$stage/model/" \;)
set_name=$(basename "$data") # the ablation table names the set by its folder
mkdir -p "$stage/data/$set_name"
cp -r "$data/corpus.jsonl" "$data/queries.jsonl" "$data/qrels" "$stage/data/$set_name/"
{
  echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "packed $(date -u +%FT%TZ)"
  echo "binary $bin ($kind)"
  echo "model $model (weights f16)"
  echo "data $data"
} > "$stage/bundle.txt"

archive "$stage" "$out/bundle.tar.xz"
