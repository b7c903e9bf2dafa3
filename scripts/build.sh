#!/usr/bin/env bash
# Configures (Ninja, ccache, Release) and builds everything into build/ (or $HML_BUILD_DIR).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${HML_BUILD_DIR:-$root/build}"
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
echo "build: compiling into $build (a fresh build takes several minutes on 2 cores)"
cmake --build "$build" -j "$(nproc)"
