#!/usr/bin/env bash
# Build the CUDA trainer (`--features cuda`) on a Debian 12 machine, with or
# without a GPU: installs Debian's nvidia-cuda-toolkit (CUDA 11.8, from the
# non-free component) when nvcc is missing, then builds into its own target
# folder so the CPU build in target/ is untouched.
#
#   bash scripts/build-cuda.sh            # then: $BIN bench train --device cuda
#
# Why the two variables: there is no GPU for candle-kernels to read the compute
# capability from, and CUDA 11.8 knows no sm_90a, so the kernels are built as
# sm_80 PTX (the driver JITs them for Hopper). Debian 12's gcc 12 is newer
# than CUDA 11.8 supports; the kernels compile with it all the same.
# A machine with a CUDA 12 toolkit can set CUDA_COMPUTE_CAP=90 instead.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nvcc >/dev/null; then
  src=/etc/apt/sources.list.d/debian-non-free.sources
  if ! apt-cache policy nvidia-cuda-toolkit | grep -q 'Candidate: [0-9]'; then
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: contrib non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > "$src"
    apt-get update
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nvidia-cuda-toolkit
fi
nvcc --version | tail -1

export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-80}"
export NVCC_APPEND_FLAGS="${NVCC_APPEND_FLAGS:--allow-unsupported-compiler}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target-cuda}"
cargo build --release -p ernie-search-cli --features cuda
echo "built $CARGO_TARGET_DIR/release/ernie-search (CUDA, compute capability $CUDA_COMPUTE_CAP)"
