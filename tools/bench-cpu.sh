#!/usr/bin/env bash
# Prefill / decode speed of `unicorn bench` (CPU backend) against llama.cpp's
# llama-bench (CPU backend), in the same run, on random-weight GGUFs with the
# exact Gemma 3 1B and 4B shapes (Q4_0 matrices, Q8_0 token embedding) made by
# unicorn-make-gguf. Both tools measure the same way: ppN = one prefill of N
# tokens into an empty context, tgN = N single-token decode steps from an
# empty context, -r timed repetitions after a warm-up.
#
# Usage: tools/bench-cpu.sh [--build DIR] [--llama-bench PATH] [--models DIR]
#          [--threads N] [--shapes "gemma3-1b gemma3-4b"] [-p 512] [-n 128] [-r 3]
# llama-bench is built outside this repository (CPU only), e.g.:
#   cmake -S llama.cpp -B llama.cpp-build -DGGML_NATIVE=ON -DLLAMA_CURL=OFF && \
#   cmake --build llama.cpp-build --target llama-bench
# Prints both tools' tables, then one line per shape and test with the ratio
# unicorn / llama.cpp; the JSON of every run is kept in the models folder.
set -euo pipefail

BUILD=build
LLAMA_BENCH=${LLAMA_BENCH:-../llama.cpp-build/bin/llama-bench}
MODELS=${TMPDIR:-/tmp}/unicorn-bench-models
THREADS=$(nproc)
SHAPES="gemma3-1b gemma3-4b"
PP=512
TG=128
REPS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --llama-bench) LLAMA_BENCH=$2; shift 2 ;;
    --models) MODELS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --shapes) SHAPES=$2; shift 2 ;;
    -p) PP=$2; shift 2 ;;
    -n) TG=$2; shift 2 ;;
    -r) REPS=$2; shift 2 ;;
    *) echo "bench-cpu: unknown option $1" >&2; exit 2 ;;
  esac
done

for exe in "$BUILD/bin/unicorn" "$BUILD/bin/unicorn-make-gguf" "$LLAMA_BENCH"; do
  [ -x "$exe" ] || { echo "bench-cpu: $exe not found (build it first)" >&2; exit 1; }
done
mkdir -p "$MODELS"
echo "# $(uname -m), $(nproc) CPUs, threads $THREADS: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"

summary=()
for shape in $SHAPES; do
  model="$MODELS/$shape-q4_0.gguf"
  [ -f "$model" ] || "$BUILD/bin/unicorn-make-gguf" --shape "$shape" --out "$model"
  echo "## $shape"
  "$BUILD/bin/unicorn" bench -m "$model" --backend cpu -t "$THREADS" -p "$PP" -n "$TG" \
    -r "$REPS" --json > "$MODELS/$shape-unicorn.json"
  "$LLAMA_BENCH" -m "$model" -t "$THREADS" -p "$PP" -n "$TG" -r "$REPS" -o json \
    > "$MODELS/$shape-llama.json" 2> "$MODELS/$shape-llama.log"
  summary+=("$(python3 - "$shape" "$MODELS/$shape-unicorn.json" "$MODELS/$shape-llama.json" <<'EOF'
import json, sys
shape, ours_path, llama_path = sys.argv[1:]
ours = {r["test"]: r for r in json.load(open(ours_path))["results"]}
lines = []
for r in json.load(open(llama_path)):
    test = ("pp%d" % r["n_prompt"]) if r["n_gen"] == 0 else ("tg%d" % r["n_gen"])
    if test not in ours:
        continue
    u, l = ours[test], r
    lines.append("%-10s %-6s unicorn %8.2f ± %5.2f tok/s | llama.cpp %8.2f ± %5.2f tok/s | ratio %.2fx"
                 % (shape, test, u["tok_s_mean"], u["tok_s_std"], l["avg_ts"], l["stddev_ts"],
                    u["tok_s_mean"] / l["avg_ts"]))
print("\n".join(lines))
EOF
)")
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d['device'])" \
    "$MODELS/$shape-unicorn.json"
done
echo "## summary (threads $THREADS)"
printf '%s\n' "${summary[@]}"
