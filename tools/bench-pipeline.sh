#!/usr/bin/env bash
# What the three-process pipeline costs against one process on the same
# config: decode tok/s of `unicorn run --config` and of `unicorn generate`
# through the coordinator and workers, alternated over R rounds, with the
# ratio, the hops per token and the time each hop adds.
#   tools/bench-pipeline.sh [CONFIG] [N_TOKENS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-configs/default.yaml}
n=${2:-128}
rounds=${3:-3}
bin=build/bin/unicorn
prompt="The history of the city"

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

"$bin" up --config "$config" >/dev/null
trap '"$bin" down --config "$config" >/dev/null' EXIT
# The config's values (block or flow YAML), else the defaults.
value() { grep -o "$1: *[^ ,}]*" "$config" | head -1 | sed "s/^$1: *//"; }
runtime=$(value runtime_dir)
log=${runtime:-${XDG_RUNTIME_DIR:+$XDG_RUNTIME_DIR/unicorn}}
log=${log:-/tmp/unicorn-$(id -u)}/logs/coordinator.log
hops=$(grep -o '([0-9]* hops per step)' "$log" | tail -1 | tr -dc 0-9 || true)
server=$(value grpc_address)
server=${server:-127.0.0.1:50051}

one=() three=()
for r in $(seq "$rounds"); do
  one+=("$("$bin" run --config "$config" -p "$prompt" -n "$n" 2>&1 >/dev/null |
    sed -n 's/.*generation [0-9]* tokens, [0-9.]* s, \([0-9.]*\) tok\/s.*/\1/p' || true)")
  three+=("$("$bin" generate --server "$server" --timings -p "$prompt" -n "$n" 2>&1 >/dev/null |
    sed -n 's/.*generation [0-9]* tokens, \([0-9.]*\) tok\/s.*/\1/p' || true)")
done
a=$(printf '%s\n' "${one[@]}" | median)
b=$(printf '%s\n' "${three[@]}" | median)
echo "config $config, $n tokens, $rounds rounds (median), $(nproc) cores"
echo "one process (unicorn run --config): $a tok/s  [${one[*]}]"
echo "three processes (unicorn generate): $b tok/s  [${three[*]}]"
awk -v a="$a" -v b="$b" -v h="$hops" 'BEGIN {
  printf "ratio three/one: %.3f\n", b / a
  printf "hops per token: %d; added time per hop: %.1f us\n", h, (1 / b - 1 / a) * 1e6 / h
}'
