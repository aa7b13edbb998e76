#!/usr/bin/env bash
# Fuzzes the file readers (fuzz/fuzz_targets/*.rs) with libFuzzer.
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET: default 10; 0 means no time limit (then set FUZZ_RUNS).
# TARGET: default every target in fuzz/fuzz_targets/ (model index lexical_meta
#   lexical_block manifest shard table wordpiece json embed_cache).
#
# Environment:
#   FUZZ_RUNS=N       stop a target after N executions (libFuzzer -runs=N), e.g.
#                     FUZZ_RUNS=10000000 bash scripts/fuzz.sh 0 index
#   FUZZ_GROW=1       keep the grown corpus in fuzz/target/corpus/<target>
#                     between runs (default: start each run afresh from a copy
#                     of the committed seeds, fuzz/corpus/<target>, and of the
#                     inputs that once crashed, fuzz/regressions/<target>)
#   FUZZ_MEM_MB=2048  -rss_limit_mb and -malloc_limit_mb: an allocation above
#                     it counts as a crash (so does an input slower than
#                     FUZZ_TIMEOUT=25 seconds)
#   FUZZ_BUILD_ARGS   extra arguments for `cargo fuzz build`
#   FUZZ_NO_BUILD=1   reuse the binaries already built
#
# Every run starts with the committed seeds and regression inputs, so a short
# run (CI: 10 s per target) also replays every crash found so far.
# Builds with the stable toolchain (RUSTC_BOOTSTRAP=1, no sanitizer; release
# optimisations with debug assertions and overflow checks, cargo-fuzz's
# default). The committed seeds are never modified. Crash inputs are left in
# fuzz/artifacts/<target>/; reproduce one with
#   fuzz/target/x86_64-unknown-linux-gnu/release/<target> fuzz/artifacts/<target>/crash-...
# and minimize it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz tmin -s none <target> fuzz/artifacts/<target>/crash-...
# Exits non-zero when any target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-10}
shift || true
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for f in fuzz/fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi
for t in "${targets[@]}"; do
  [ -f "fuzz/fuzz_targets/$t.rs" ] || { echo "fuzz.sh: no target $t (fuzz/fuzz_targets/$t.rs)" >&2; exit 2; }
done
if [ "$secs" = 0 ] && [ -z "${FUZZ_RUNS:-}" ]; then
  echo "fuzz.sh: 0 seconds means no time limit: set FUZZ_RUNS too" >&2
  exit 2
fi
mem=${FUZZ_MEM_MB:-2048}
timeout=${FUZZ_TIMEOUT:-25}
triple=$(rustc -vV | awk '/^host:/{print $2}')
bin_dir=fuzz/target/$triple/release

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz (builds on stable)"
  cargo install cargo-fuzz --version ^0.13
fi

if [ -z "${FUZZ_NO_BUILD:-}" ]; then
  echo "== building fuzz targets"
  build_start=$SECONDS
  # One build for all targets, or one per named target.
  if [ $# -eq 0 ]; then
    RUSTC_BOOTSTRAP=1 cargo fuzz build -s none ${FUZZ_BUILD_ARGS:-}
  else
    for t in "${targets[@]}"; do RUSTC_BOOTSTRAP=1 cargo fuzz build -s none ${FUZZ_BUILD_ARGS:-} "$t"; done
  fi
  echo "built in $((SECONDS - build_start))s"
fi

mkdir -p fuzz/target/logs
failed=0
rows=()
for t in "${targets[@]}"; do
  corpus=fuzz/target/corpus/$t
  if [ -z "${FUZZ_GROW:-}" ] || [ ! -d "$corpus" ]; then
    rm -rf "$corpus"
    mkdir -p "$corpus"
    cp fuzz/corpus/"$t"/* "$corpus"/
    if [ -d fuzz/regressions/"$t" ]; then cp fuzz/regressions/"$t"/* "$corpus"/; fi
  fi
  artifacts=fuzz/artifacts/$t
  mkdir -p "$artifacts"
  before=$(find "$artifacts" -maxdepth 1 -type f | sort)
  args=(-rss_limit_mb="$mem" -malloc_limit_mb="$mem" -timeout="$timeout" -print_final_stats=1
        -artifact_prefix="$artifacts/")
  if [ -f fuzz/dicts/"$t".dict ]; then args+=(-dict=fuzz/dicts/"$t".dict); fi
  [ "$secs" != 0 ] && args+=(-max_total_time="$secs")
  [ -n "${FUZZ_RUNS:-}" ] && args+=(-runs="$FUZZ_RUNS")
  log=fuzz/target/logs/$t.log
  echo "== fuzz $t (${secs}s${FUZZ_RUNS:+, up to $FUZZ_RUNS runs}; log $log)"
  start=$(date +%s.%N)
  rc=0
  "$bin_dir/$t" "${args[@]}" "$corpus" >"$log" 2>&1 || rc=$?
  wall=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e - s}')
  execs=$(awk '/stat::number_of_executed_units:/{n=$2} END{print n==""?"?":n}' "$log")
  rate=$(awk '/stat::average_exec_per_sec:/{n=$2} END{print n==""?"?":n}' "$log")
  after=$(find "$artifacts" -maxdepth 1 -type f | sort)
  new=$(comm -13 <(echo "$before") <(echo "$after") | sed '/^$/d' || true)
  crashes=$(printf '%s' "$new" | grep -c . || true)
  if [ "$rc" != 0 ] && [ "$crashes" = 0 ]; then crashes=1; fi   # died without an artifact
  echo "$t: $execs executions in ${wall}s, $crashes crashes"
  if [ "$crashes" != 0 ]; then
    failed=1
    echo "---- $t crashed (exit $rc); input(s):"
    printf '%s\n' "$new" | sed 's/^/    /'
    # The panic (or allocation) message and the top frames, without std's own.
    { grep -m1 -A60 -E "panicked at|==fuzz==|==ERROR|out-of-memory|Timeout|deadly signal" "$log" || tail -20 "$log"; } |
      grep -vE '^ +at |: (std|core|alloc)::|rust_begin_unwind|__rust' | head -16 | sed 's/^/    /' || true
  fi
  rows+=("$t $wall $execs $rate $crashes")
done

echo
echo "== fuzz summary"
printf '%-14s %8s %12s %8s %8s\n' target seconds executions exec/s crashes
for r in "${rows[@]}"; do
  # shellcheck disable=SC2086
  printf '%-14s %8s %12s %8s %8s\n' $r
done
if [ "$failed" != 0 ]; then
  echo "fuzz: crashes found; inputs in fuzz/artifacts/<target>/" >&2
  exit 1
fi
