# shellcheck shell=bash
# Shared by the device machine's scripts (gpu-run.sh, gpu-wgsl.sh), sourced
# after they set OUT: the --dry-run flag, summary.md's heading and notes, and
# `stop`, which says why in summary.md, calls the script's `on_stop` (what it
# keeps on the way out), and exits with the code given.
#   device_start NAME "$@"   sets dry (0/1), start, summary; writes the heading
device_start() {
  local name=$1
  shift
  start=$SECONDS dry=0
  case "${1:-}" in
    --dry-run) dry=1 ;;
    "") ;;
    *) echo "usage: bash scripts/$name.sh [--dry-run]" >&2; exit 2 ;;
  esac
  mkdir -p "$OUT"
  summary=$OUT/summary.md
  printf '# %s %s\n\ncommit %s, %s\n\n' "$name" "$([ "$dry" = 1 ] && echo "(dry run)")" \
    "$(git rev-parse --short HEAD 2> /dev/null || echo unknown)" "$(date -u +%FT%TZ)" > "$summary"
}

note() { echo "$*" | tee -a "$summary"; }

on_stop() { :; }

stop() {
  local code=$1
  shift
  note ""
  note "**stopped: $*** (after $((SECONDS - start)) s)"
  on_stop
  exit "$code"
}
