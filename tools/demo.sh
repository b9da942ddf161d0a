#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, starts the
# coordinator and both workers on configs/default.yaml (the embedded demo
# model; attention on the NPU worker, FFN on the GPU worker), shows them
# serving, answers a prompt through the gRPC API, and stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-configs/default.yaml}
prompt=${UNICORN_PROMPT:-"Hello! Who are you?"}

tools/install-deps.sh
cmake -S . -B build -G Ninja >/dev/null
cmake --build build -j"$(nproc)" --target unicorn unicorn-coordinator unicorn-npu-worker unicorn-gpu-worker

trap 'build/bin/unicorn down --config "$config"' EXIT
build/bin/unicorn up --config "$config"
sleep 1  # let a few heartbeats go round so the round trips are measured
build/bin/unicorn health
echo "== user: $prompt"
printf '== model: '
build/bin/unicorn generate --chat --prompt "$prompt" -n 64
