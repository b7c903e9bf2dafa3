#!/usr/bin/env bash
# Installs the build tree into a temporary prefix, builds tests/install/consumer against it with
# find_package(hybridml), and runs it on Relu from the ONNX test suite: [-1, 1, ...] -> [0, 1, ...].
set -euo pipefail
build_dir="$1"
source_dir="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" > "$work/install.log"
cmake -S "$source_dir/tests/install/consumer" -B "$work/build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/configure.log"
cmake --build "$work/build" > "$work/build.log"
out="$("$work/build/consumer" /usr/share/libonnx-testdata/data/node/test_relu/model.onnx)"
echo "$out"
[ "$out" = "output[0]=0 output[1]=1 elements=60" ]
