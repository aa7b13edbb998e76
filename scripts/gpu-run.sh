#!/usr/bin/env bash
# Issue 22 on the device machine, in one call of at most 9 minutes: check the
# GPU, time training (ours on CUDA and on the CPU, sentence-transformers on the
# same GPU), run the ablation (DE alone, + SOFD, direct CE -> DE, the cascade,
# at 6 layers and the 3-layer spread cut, zero-shot for reference; the CE on
# every training query), probe the teachers, and leave the results under $OUT.
# The device has no Rust and no network: scripts/gpu-pack.sh packs the binary,
# the model and the data here, into .gpu/ (git-ignored), which the call carries.
#
#   device tool:  carry [".gpu"], command "bash scripts/gpu-run.sh", timeout_s 600
#   here:         bash scripts/gpu-pack.sh --cpu && bash scripts/gpu-run.sh --dry-run
#                 (the CPU, the recipe's device forced to cpu; cli/tests/train.rs
#                 runs it on a tiny model, so device time never finds a typo)
#
# Environment: BUNDLE (.gpu), OUT (set by the device tool; else target/gpu-run),
# BUDGET_S (540: the whole run), RECIPE (training/recipes/gpu.toml), ROWS,
# SMALL_LAYERS (3), BENCH_STEPS (20), BENCH_QUERY_LEN / BENCH_PASSAGE_LEN
# (32 / 192, bench/train.sh's shape), NVIDIA_SMI (nvidia-smi), MIN_DRIVER (580:
# CUDA 13.0's, which scripts/build-cuda.sh builds with; its PTX needs it).
#
# Under $OUT (the device returns at most 8 files): summary.md (each step, its
# result and seconds; why it stopped), log.txt (every step's output),
# bench.jsonl, table.md (the ablation), probe.md, recipe.toml (as run),
# runs.tar.gz (each row's result.json, TREC run and metrics; no weights).
# Exit: 0 when it ran to the end (a step that failed on its own is marked in
# summary.md); 3 when the machine cannot run it (no GPU, driver too old, a
# library missing, out of memory), within seconds of finding out; 2 bad usage
# or bundle. Either way what was measured so far stays under $OUT.
set -uo pipefail # not -e: every step's outcome is recorded, then acted on
cd "$(dirname "$0")/.."
OUT=${OUT:-target/gpu-run}
source scripts/device-lib.sh
device_start gpu-run "$@"
BUNDLE=${BUNDLE:-.gpu}
BUDGET_S=${BUDGET_S:-540}
RECIPE=${RECIPE:-training/recipes/gpu.toml}
ROWS=${ROWS:-zero-shot,de,cascade,sofd,direct,l3-de,l3-cascade}
SMALL_LAYERS=${SMALL_LAYERS:-3}
BENCH_STEPS=${BENCH_STEPS:-20}
NVIDIA_SMI=${NVIDIA_SMI:-nvidia-smi}
MIN_DRIVER=${MIN_DRIVER:-580}
RESERVE=20 # seconds kept back for the table, the probe's fallback and packing
device=cuda
[ "$dry" = 1 ] && device=cpu

log=$OUT/log.txt
work=$(mktemp -d /tmp/gpu-run.XXXXXX)
trap 'rm -rf "$work"' EXIT # ours: the unpacked bundle and the run's weights
run=$work/run
: > "$log"
note "device $device, budget $BUDGET_S s"
note ""

left() { echo $((BUDGET_S - (SECONDS - start))); }

# What was measured goes back in any case: results, never weights.
pack() {
  [ -d "$run" ] || return 0
  [ -f "$run/probe.md" ] && cp "$run/probe.md" "$OUT/probe.md"
  (cd "$run" && find . \( -name result.json -o -name '*.trec' -o -name metrics.jsonl -o -name probe.md \) -print0 |
    tar --null -czf "$OUT/runs.tar.gz" -T -) 2>> "$log"
}

on_stop() { pack; }

# The machine's own failures, read off a step's output: each ends the run.
machine_failure() {
  local f=$1
  if grep -qiE 'out of memory|CUDA_ERROR_OUT_OF_MEMORY|OutOfMemory' "$f"; then
    stop 3 "out of memory in $2 ($(grep -iE -m1 'out of memory|OUT_OF_MEMORY|OutOfMemory' "$f"))"
  elif grep -qiE 'INSUFFICIENT_DRIVER|driver version is insufficient|UNSUPPORTED_PTX_VERSION' "$f"; then
    stop 3 "the driver is too old for this binary ($(grep -iE -m1 'DRIVER|PTX' "$f"))"
  elif grep -qiE 'cannot open shared object|dynamically load|DlOpen' "$f"; then
    stop 3 "a CUDA library is missing ($(grep -iE -m1 'shared object|dynamically load|DlOpen' "$f"))"
  elif grep -qiE 'CUDA_ERROR_NO_DEVICE|no CUDA device' "$f"; then
    stop 3 "no CUDA device ($(grep -iE -m1 'NO_DEVICE|no CUDA device' "$f"))"
  fi
}

# A failed step's reason, in one line: its first error line, else its last line.
why() {
  { grep -iE -m1 '^(error|st_train|thread .* panicked)' "$1" || grep -v '^\s*$' "$1" | tail -1; } | tr '|' '/' | cut -c1-240
}

# step NAME CAP_S CMD...: CMD's output to $work/NAME.log and log.txt, at most
# CAP_S seconds (never past the budget); its outcome and seconds to summary.md.
step() {
  local name=$1 cap=$2
  shift 2
  local room=$(($(left) - RESERVE))
  [ "$cap" -gt "$room" ] && cap=$room
  if [ "$cap" -lt 5 ]; then
    note "| $name | skipped: the budget is spent | 0 |"
    return 1
  fi
  local t0=$SECONDS rc what=ok
  timeout --kill-after=10 "$cap" "$@" > "$work/$name.log" 2>&1
  rc=$?
  { echo "== $name (exit $rc)"; cat "$work/$name.log"; } >> "$log"
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    what="stopped at its cap of $cap s"
  elif [ "$rc" != 0 ]; then
    what="failed (exit $rc): $(why "$work/$name.log")"
  fi
  note "| $name | $what | $((SECONDS - t0)) |"
  machine_failure "$work/$name.log" "$name"
  return "$rc"
}

# ---- the bundle
if [ -f "$BUNDLE/bundle.tar.xz" ]; then
  mkdir -p "$work/bundle"
  tar -C "$work/bundle" -xJf "$BUNDLE/bundle.tar.xz" || stop 2 "cannot unpack $BUNDLE/bundle.tar.xz"
  bundle=$work/bundle
elif [ -f "$BUNDLE/bin/ernie-search" ]; then
  bundle=$BUNDLE
else
  stop 2 "no bundle in $BUNDLE: run scripts/gpu-pack.sh here first and carry .gpu"
fi
bin=$bundle/bin/ernie-search model=$bundle/model
data=$(find "$bundle/data" -mindepth 1 -maxdepth 1 -type d 2> /dev/null | head -1)
[ -n "$data" ] || stop 2 "the bundle has no data set under data/: pack it again (scripts/gpu-pack.sh)"
for f in "$bin" "$model/model.safetensors" "$model/config.json" "$data/corpus.jsonl" "$data/qrels"; do
  [ -e "$f" ] || stop 2 "the bundle lacks ${f#"$bundle"/}: pack it again (scripts/gpu-pack.sh)"
done
[ -f "$bundle/bundle.txt" ] && note "bundle: $(tr '\n' ';' < "$bundle/bundle.txt")"
[ -f "$RECIPE" ] || stop 2 "no recipe at $RECIPE"

# ---- the machine
if [ "$dry" = 0 ]; then
  command -v "$NVIDIA_SMI" > /dev/null || stop 3 "no GPU: $NVIDIA_SMI is not on this machine"
  gpu=$("$NVIDIA_SMI" --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1) ||
    stop 3 "no GPU: $NVIDIA_SMI says: $(echo "$gpu" | head -1)"
  note "GPU: $gpu"
  driver=$(echo "$gpu" | head -1 | cut -d, -f2 | tr -d ' ' | cut -d. -f1)
  [[ "$driver" =~ ^[0-9]+$ ]] && [ "$driver" -ge "$MIN_DRIVER" ] ||
    stop 3 "the driver is too old: $driver, this binary needs >= $MIN_DRIVER"
  # The CUDA libraries come with PyTorch's pip packages there (nvidia-*).
  libs=$(python3 -c 'import glob, os, nvidia
print(":".join(sorted({os.path.dirname(p) for d in nvidia.__path__ for p in glob.glob(d + "/*/lib/*.so*")})))' 2> /dev/null)
  # The driver's own libcuda.so.1 where the device mounts it, if the loader does not know it.
  for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do [ -d "$d" ] && libs="${libs:+$libs:}$d"; done
  [ -n "$libs" ] && export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  missing=$(ldd "$bin" 2>&1 | grep 'not found' | awk '{print $1}' | tr '\n' ' ')
  [ -z "$missing" ] || stop 3 "libraries missing for $bin: $missing(searched ${LD_LIBRARY_PATH:-the default paths})"
fi
note "CPU: $(nproc) cores"

# ---- the recipe, pointed at the bundle
{
  echo "device = \"$device\""
  sed -e '/^device *=/d' -e "s|^set *=.*|set = \"$data\"|" -e "s|^init *=.*|init = \"$model\"|" "$RECIPE"
} > "$OUT/recipe.toml"
grep -q "^set = \"$data\"" "$OUT/recipe.toml" && grep -q "^init = \"$model\"" "$OUT/recipe.toml" ||
  stop 2 "$RECIPE has no top-of-line set = / init = to point at the bundle"

note ""
note "| step | result | seconds |"
note "|---|---|---|"

# ---- training speed (samples/s), ours and the peer, on the same batch shape
bench() { # bench NAME CAP CMD...: the JSON line CMD prints, tagged, to bench.jsonl
  local name=$1
  step "$@" || return 0
  grep '^{' "$work/$name.log" | sed "s/^/{\"engine\":\"$name\",\"r\":/; s/$/}/" >> "$OUT/bench.jsonl"
}
lens=(--batch 16 --query-len "${BENCH_QUERY_LEN:-32}" --passage-len "${BENCH_PASSAGE_LEN:-192}")
bench_args=(--checkpoint "$model" "${lens[@]}")
bench bench-ours-$device 90 "$bin" bench train "${bench_args[@]}" --steps "$BENCH_STEPS" --device "$device"
[ "$dry" = 0 ] && bench bench-ours-cpu 60 "$bin" bench train "${bench_args[@]}" --steps 2 --device cpu
bench bench-st-$device 90 python3 bench/st_train.py --model "$model" "${lens[@]}" --steps "$BENCH_STEPS" --device "$device"

# ---- the ablation; rows finish one by one (each cached), so a cap keeps the finished ones
printf '<!-- ablation:start -->\n<!-- ablation:end -->\n' > "$OUT/table.md"
ablate=("$bin" ablate --recipe "$OUT/recipe.toml" --run "$run" --small-layers "$SMALL_LAYERS")
if ! step ablate $(($(left) - 60)) "${ablate[@]}" --rows "$ROWS" --benchmarks "$OUT/table.md"; then
  done_rows=$(cd "$run/rows" 2> /dev/null && for r in ${ROWS//,/ }; do [ -f "$r/result.json" ] && printf '%s,' "$r"; done)
  if [ -n "$done_rows" ]; then
    RESERVE=5 step table 30 "${ablate[@]}" --rows "${done_rows%,}" --benchmarks "$OUT/table.md"
  fi
fi

# ---- is each teacher better than its student? (BM25 top-20 of 200 dev queries)
li_head=$(ls -d "$run"/li-head-L* 2> /dev/null | sort -V | tail -1)
if [ -f "$run/ce/model.safetensors" ] && [ -n "$li_head" ]; then
  students=init
  for r in de cascade; do [ -f "$run/rows/$r/model.safetensors" ] && students+=",$run/rows/$r"; done
  RESERVE=5 step probe 60 "$bin" probe --recipe "$OUT/recipe.toml" --run "$run" --students "$students" \
    --init-li "$li_head" --ce "$run/ce"
else
  note "| probe | skipped: no trained CE or LI head (the ablation stopped before them) | 0 |"
fi

pack
note ""
note "finished in $((SECONDS - start)) s"
