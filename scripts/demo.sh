#!/usr/bin/env bash
# The main job: `hybridml demo` — train a teacher and distil a student on Fashion-MNIST, compress
# the student to int8, sign, publish and roll out both, then simulated devices (threads with
# wifi / 4g / poor links) install the student over the air and route the test images under each
# policy (local-only, cloud-only, prefer-local, prefer-cloud, cascade); prints the table.
# Models are cached in $HML_BUILD_DIR/demo (default build/demo): a second run skips training.
# Extra arguments go to `hybridml demo` (see `build/src/cli/hybridml demo --help`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh"
build="${HML_BUILD_DIR:-$root/build}"
"$build/src/cli/hybridml" demo --workdir "$build/demo" "$@"
