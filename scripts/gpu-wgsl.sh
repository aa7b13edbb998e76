#!/usr/bin/env bash
# Issue 22, part 3, on the device machine in one call: our WGSL kernels on the
# real GPU through Vulkan (examples/gpu_bench): batch encode against the CPU
# backend, and the top-10 scan over 100k x 384 and 10M x 384 against the HBM
# bandwidth floor. The device has no Rust and no network: `scripts/gpu-pack.sh
# --wgsl` packs the example binary and the Q8_0 model here into .gpu/, and the
# Vulkan loader comes as Debian packages in .gl/ (the device tool's README:
# `apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2`).
#
#   device tool:  carry [".gpu", ".gl"], command "bash scripts/gpu-wgsl.sh", timeout_s 600
#   here:         bash scripts/gpu-pack.sh --wgsl && bash scripts/gpu-wgsl.sh --dry-run
#                 (Mesa's lavapipe, small sizes: the plumbing, never the speed)
#
# Environment: OUT (set by the device tool; else target/gpu-wgsl), BUNDLE (.gpu),
# GL (.gl), BANDWIDTH (4800 GB/s, the H200's HBM3e datasheet figure; the floor),
# SIZES ("100000 10000000" passages), BATCH (256 passages of WORDS 100 words),
# BUDGET_S (560: every gpu_bench run together).
# Under $OUT: summary.md and one log per gpu_bench run. Exit 1 when a run
# failed, 3 when there is no Vulkan GPU to run on (gpu_bench's own error
# named), 2 on a missing bundle.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-target/gpu-wgsl}
source scripts/device-lib.sh
device_start gpu-wgsl "$@"
BUNDLE=${BUNDLE:-.gpu}
GL=${GL:-.gl}
BANDWIDTH=${BANDWIDTH:-4800}
SIZES=${SIZES:-100000 10000000}
BATCH=${BATCH:-256}
WORDS=${WORDS:-100}
BUDGET_S=${BUDGET_S:-560}
if [ "$dry" = 1 ]; then
  SIZES=${DRY_SIZES:-2000} BATCH=2 WORDS=8
fi
work=$(mktemp -d /tmp/gpu-wgsl.XXXXXX)
trap 'rm -rf "$work"' EXIT # ours: the unpacked bundle
[ -f "$BUNDLE/wgsl.tar.xz" ] || stop 2 "no $BUNDLE/wgsl.tar.xz: run scripts/gpu-pack.sh --wgsl here first and carry .gpu"
tar -C "$work" -xJf "$BUNDLE/wgsl.tar.xz" || stop 2 "cannot unpack $BUNDLE/wgsl.tar.xz"
[ -x "$work/gpu_bench" ] || stop 2 "the bundle lacks gpu_bench: pack it again (scripts/gpu-pack.sh --wgsl)"
[ -f "$work/minilm-q8.gguf" ] || [ "$dry" = 1 ] || stop 2 "the bundle lacks minilm-q8.gguf: pack it again (scripts/gpu-pack.sh --wgsl)"

export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
if [ "$dry" = 1 ]; then
  export VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-/usr/share/vulkan/icd.d/lvp_icd.x86_64.json}
  floor=() # lavapipe reads host memory: gpu_bench measures that floor itself
else
  command -v nvidia-smi > /dev/null || stop 3 "no GPU: nvidia-smi is not on this machine"
  note "GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1)"
  if ! ldconfig -p | grep -q libvulkan; then
    ls "$GL"/*.deb > /dev/null 2>&1 || stop 3 "no Vulkan loader on this machine and none carried in $GL"
    for f in "$GL"/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  [ -f "$icd" ] && export VK_DRIVER_FILES=${VK_DRIVER_FILES:-$icd}
  floor=(--bandwidth "$BANDWIDTH")
fi

note "| passages | encode batch | result | seconds | log |"
note "|---|---|---|---|---|"
first=1 failed=0
for n in $SIZES; do
  # gpu_bench times the batch encode in every run, before the scan of this size.
  args=(--passages "$n" --runs 5 --batch "$BATCH" --words "$WORDS" --model "$work/minilm-q8.gguf" "${floor[@]}")
  left=$((BUDGET_S - (SECONDS - start)))
  if [ "$left" -lt 10 ]; then
    note "| $n | $BATCH x $WORDS words | skipped: the $BUDGET_S s budget is spent | 0 | |"
    continue
  fi
  t0=$SECONDS
  timeout --kill-after=10 "$left" "$work/gpu_bench" "${args[@]}" > "$OUT/bench-$n.log" 2>&1
  rc=$?
  what=ok
  [ "$rc" = 0 ] || what="failed (exit $rc): $(tail -1 "$OUT/bench-$n.log" | tr '|' '/' | cut -c1-200)" failed=1
  note "| $n | $BATCH x $WORDS words | $what | $((SECONDS - t0)) | bench-$n.log |"
  # A software adapter's figures mean nothing for the GPU: the first run says which it got.
  if [ "$first" = 1 ] && [ "$dry" = 0 ] && grep -q '^gpu_bench: adapter .*, cpu)' "$OUT/bench-$n.log"; then
    stop 3 "Vulkan gave a software adapter, not the GPU: $(grep -m1 '^gpu_bench: adapter' "$OUT/bench-$n.log")"
  fi
  if [ "$first" = 1 ] && [ "$rc" != 0 ] && grep -qiE 'adapter|vulkan|no suitable|request' "$OUT/bench-$n.log"; then
    stop 3 "no Vulkan GPU: $(grep -iE -m1 'adapter|vulkan|no suitable|request' "$OUT/bench-$n.log")"
  fi
  first=0
done
note ""
note "finished in $((SECONDS - start)) s$([ "$failed" = 1 ] && echo ", with failures")"
exit "$failed"
