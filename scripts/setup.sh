#!/usr/bin/env bash
# Installs every Debian package hybridml needs to build, test and benchmark.
# Idempotent: when everything is already installed it prints one line and exits.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git
  # device runtime
  libxnnpack-dev libpthreadpool-dev libcpuinfo-dev
  # ONNX and its conformance suite
  libonnx-dev libonnx-testdata libprotobuf-dev protobuf-compiler
  # command line, JSON, compression
  libcli11-dev nlohmann-json3-dev zlib1g-dev libzstd-dev
  # OTA: Ed25519 signatures and hashes, the registry's embedded store
  libsodium-dev libsqlite3-dev
  # cloud server: gRPC, HTTP, TLS; tests talk to it with curl and scrape it with Prometheus
  libgrpc++-dev protobuf-compiler-grpc libcpp-httplib-dev libssl-dev curl prometheus
  # data: Fashion-MNIST (training, compression accuracy)
  dataset-fashion-mnist
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # peers for the runtime benchmark (OpenCV DNN, LibTorch/TorchScript, PyTorch exporter)
  libopencv-dev libtorch-dev libopenblas0-pthread
  python3-torch python3-torchvision python3-onnx python3-numpy
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing packages: ${missing[*]}; run this script as root" >&2
  exit 1
fi

echo "setup: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
