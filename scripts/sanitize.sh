#!/usr/bin/env bash
# Builds the tests with AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/ and runs
# them (not part of CI: it takes ~10 minutes on 2 cores). Any memory error or UB fails the run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${HML_ASAN_BUILD_DIR:-$root/build-asan}"
bash "$root/scripts/setup.sh"
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHML_BUILD_BENCH=OFF \
    -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined"
fi
cmake --build "$build" -j "$(nproc)"
cd "$build"
# The install test builds an unsanitized consumer against the sanitized library: skip it here.
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  ctest --output-on-failure -j "$(nproc)" -E install_consumer_test
