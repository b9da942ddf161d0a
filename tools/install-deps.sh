#!/usr/bin/env bash
# Installs exactly what Unicorn needs to build, test and run on Debian 12.
# Idempotent: when every package is already present it only checks and exits
# (no apt-get update), so it costs well under a second on a prepared machine.
# Run as root (or through sudo). Usage: tools/install-deps.sh
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git clang libclang-rt-14-dev
  # RPC and messaging: gRPC + Protobuf for clients, ZeroMQ for worker control
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libzmq3-dev cppzmq-dev
  # Vulkan: loader, headers, shader compilers, lavapipe for CPU-only machines
  libvulkan-dev glslc glslang-tools spirv-headers mesa-vulkan-drivers
  # shared memory and dma-buf
  libboost-dev libdrm-dev
  # config, CLI, logging, JSON, HTTP (the OpenAI-compatible API, /metrics, loadtest)
  libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libcpp-httplib-dev
  # the Prometheus text parser that the /metrics integration test uses
  python3-prometheus-client
  # CPU SIMD
  libhwy-dev
  # images
  libstb-dev libpng-dev libjpeg-dev
  # systemd readiness/watchdog (sd_notify)
  libsystemd-dev
  # NPU (XRT): the XRT backend is compiled wherever these headers are found
  libxrt-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev python3-numpy
  # end-to-end tests: the official `openai` npm client, and `unicorn chat` in a terminal
  nodejs tmux
)
# Debian's npm package; skipped where npm came with another nodejs build
# (e.g. NodeSource's, which bundles it and conflicts with Debian's npm).
if ! command -v npm >/dev/null 2>&1; then PACKAGES+=(npm); fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "[install-deps] all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "[install-deps] installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "[install-deps] done"
