#!/usr/bin/env bash
# Installs what the project needs beyond a Rust toolchain and Python 3 with pip,
# on a fresh machine (see ../shared/TOOLCHAIN.md), and does nothing when it is
# all there. Called by scripts/quickstart.sh, scripts/test.sh and .ci/run.
#
#   bash scripts/setup.sh [--browser]
#
# Always: the wasm32 target, wasm-opt (binaryen) and wasm-bindgen-cli at the
# version in Cargo.lock (the wasm package). With --browser also Chromium and
# chromedriver (browser tests), Mesa's lavapipe (software Vulkan, for the
# GPU backend's native tests) and the threaded wasm build's toolchain:
# Debian's rustc-web with its std sources (rustup cannot fetch rust-src here)
# and lld-19's wasm-ld (scripts/build-wasm.sh). Debian packages need root (apt-get); without it
# the missing ones are named with the command that installs them.
set -euo pipefail
cd "$(dirname "$0")/.."

browser=0
[ "${1:-}" = "--browser" ] && browser=1

rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

need_apt=()
command -v wasm-opt >/dev/null || need_apt+=(binaryen)
if [ "$browser" = 1 ]; then
  [ -x /usr/bin/chromium ] || need_apt+=(chromium)
  command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
  [ -f /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || need_apt+=(mesa-vulkan-drivers)
  [ -x /usr/bin/rustc ] && [ -x /usr/bin/cargo ] || need_apt+=(rustc-web cargo-web)
  [ -d /usr/lib/rustlib/src/rust/library ] || need_apt+=(rust-web-src)
  [ -x /usr/lib/llvm-19/bin/wasm-ld ] || need_apt+=(lld-19)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "setup: missing Debian packages ${need_apt[*]}; install them with: sudo apt-get install -y ${need_apt[*]}" >&2
    exit 1
  fi
  echo "setup: apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# wasm-bindgen-cli must match the wasm-bindgen in Cargo.lock exactly; not
# --locked (resolution fails against the reachable index, TOOLCHAIN.md).
want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/"/,"",$3); print $3; exit}' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  echo "setup: cargo install wasm-bindgen-cli --version $want"
  cargo install wasm-bindgen-cli --version "$want" --force
fi
python3 -m pip --version >/dev/null || { echo "setup: python3 with pip is needed (models and data come from PyPI)" >&2; exit 1; }
