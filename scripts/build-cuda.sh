#!/usr/bin/env bash
# Build the CUDA trainer (`--features cuda`), with or without a GPU, into its
# own target folder (target-cuda/) so the CPU build in target/ is untouched.
#
#   bash scripts/build-cuda.sh            # CUDA 13.0 from PyPI's nvidia-* wheels: the device
#                                         # machine's CUDA (its PyTorch carries the same libraries)
#   bash scripts/build-cuda.sh --debian   # Debian 12's nvidia-cuda-toolkit (CUDA 11.8, needs root)
#   then: target-cuda/release/ernie-search bench train --device cuda
#
# Why CUDA 13.0 and not newer: candle's kernels ship as PTX that the driver
# compiles at load, and a driver reads only the PTX of its CUDA version or
# older (the device's driver 580 is CUDA 13.0's). candle links the CUDA
# libraries by name (cudarc's dynamic-linking), so the binary needs the
# major versions it was built with: libcublas.so.13, libnvrtc.so.13,
# libcurand.so.10, which a CUDA 11.8 build (libcublas.so.11) does not find there.
#
# The wheels hold nvcc, its front end (nvvm), headers and the libraries, not
# libcuda (the driver's): the link gets a stub holding the driver functions
# cudarc declares, and the real libcuda.so.1 answers at run time.
#
# --debian: CUDA 11.8 knows no sm_90, so its kernels are sm_80 PTX; gcc 12 is
# newer than it supports (-allow-unsupported-compiler).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target-cuda}"

if [ "${1:-}" = --debian ]; then
  if ! command -v nvcc > /dev/null; then
    src=/etc/apt/sources.list.d/debian-non-free.sources
    if ! apt-cache policy nvidia-cuda-toolkit | grep -q 'Candidate: [0-9]'; then
      printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: contrib non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > "$src"
      apt-get update
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nvidia-cuda-toolkit
  fi
  export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-80}"
  export NVCC_APPEND_FLAGS="${NVCC_APPEND_FLAGS:--allow-unsupported-compiler}"
elif [ -n "${1:-}" ]; then
  echo "usage: bash scripts/build-cuda.sh [--debian]" >&2
  exit 2
else
  # CUDA 13.0 assembled from its wheels (about 0.7 GB of downloads, once).
  root=$CARGO_TARGET_DIR/cuda-13.0
  if [ ! -x "$root/nvidia/cu13/bin/nvcc" ]; then
    mkdir -p "$root/wheels"
    for w in nvidia-cuda-nvcc nvidia-nvvm nvidia-cuda-crt nvidia-cuda-runtime nvidia-cuda-cccl nvidia-cuda-nvrtc nvidia-cublas; do
      python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --platform manylinux_2_27_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux_2_12_x86_64 --platform manylinux2010_x86_64 -d "$root/wheels" "$w==13.0.*"
    done
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
      --platform manylinux_2_27_x86_64 -d "$root/wheels" "nvidia-curand==10.4.*"
    for w in "$root"/wheels/*.whl; do python3 -m zipfile -e "$w" "$root"; done
    chmod +x "$root"/nvidia/cu13/bin/* "$root"/nvidia/cu13/nvvm/bin/*
  fi
  cu=$root/nvidia/cu13
  # The names the linker asks for (lib<name>.so), beside the wheels' versioned files.
  for l in cublas cublasLt nvrtc cudart; do ln -sf "lib$l.so.13" "$cu/lib/lib$l.so"; done
  ln -sf libcurand.so.10 "$cu/lib/libcurand.so"
  # libcuda's stub: every driver function cudarc's bindings declare.
  cargo fetch -q
  sys=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -path "*/cudarc-$(awk '/^name = "cudarc"/{getline; print $3}' Cargo.lock | tr -d '"')/src/driver/sys/mod.rs" | head -1)
  [ -f "$sys" ] || { echo "build-cuda: cudarc's driver bindings not found in the cargo registry" >&2; exit 2; }
  mkdir -p "$cu/lib/stubs"
  grep -oE '^pub unsafe fn cu[A-Za-z0-9_]+' "$sys" | sed 's/pub unsafe fn //' | sort -u |
    awk '{print "int " $1 "(void) { return 999; }"}' > "$cu/lib/stubs/libcuda.c"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$cu/lib/stubs/libcuda.so" "$cu/lib/stubs/libcuda.c"
  export PATH="$(realpath "$cu/bin"):$PATH" CUDA_ROOT="$(realpath "$cu")"
  export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
fi
nvcc --version | tail -1

cargo build --release -p ernie-search-cli --features cuda
echo "built $CARGO_TARGET_DIR/release/ernie-search (CUDA, compute capability $CUDA_COMPUTE_CAP)"
