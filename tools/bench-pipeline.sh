#!/usr/bin/env bash
# What the three-process pipeline costs against one process on the same
# config: decode tok/s of `unicorn run --config` and of `unicorn generate`
# through the coordinator and workers, alternated over R rounds, with the
# ratio, the hops per token and the time each hop adds.
#   tools/bench-pipeline.sh [CONFIG] [N_TOKENS] [ROUNDS]
# With --profile [EVERY] it measures what sampled tracing costs instead:
# decode tok/s through the pipeline with profile.sample_every_n_steps EVERY
# (default: the config's, else 64) against 0 (off), the system restarted
# with each setting (3 generations each, their median), alternating which
# goes first each round, and the median of the per-round ratios; then, on
# one running system, every step traced against none (the worst case).
#   tools/bench-pipeline.sh CONFIG N_TOKENS ROUNDS --profile [EVERY]
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-configs/default.yaml}
n=${2:-128}
rounds=${3:-3}
bin=build/bin/unicorn
prompt="The history of the city"

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
value() { { grep -o "$1: *[^ ,}]*" "$config" || true; } | head -1 | sed "s/^$1: *//"; }

if [ "${4:-}" = "--profile" ]; then
  every=${5:-$(value sample_every_n_steps)}
  every=${every:-64}
  dir=$(cd "$(dirname "$config")" && pwd)
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # The config with its profile block replaced (and a relative model path
  # made absolute, since the copy lives elsewhere).
  derive() {
    awk '/^profile:/ {skip = 1; next} skip && /^[^ #]/ {skip = 0} !skip' "$config" |
      sed "s|^model: *\([^/ ][^ ]*\)|model: $dir/\1|" > "$tmp/every-$1.yaml"
    echo "profile: {sample_every_n_steps: $1, requests: 0.0}" >> "$tmp/every-$1.yaml"
  }
  derive "$every"
  derive 0
  server=$(value grpc_address)
  server=${server:-127.0.0.1:50051}
  rate() {  # median decode tok/s of 3 generations on a freshly started system ($1: EVERY)
    "$bin" up --config "$tmp/every-$1.yaml" >/dev/null
    "$bin" generate --server "$server" -p "$prompt" -n 16 >/dev/null 2>&1  # warm-up
    for _ in 1 2 3; do
      "$bin" generate --server "$server" --timings -p "$prompt" -n "$n" 2>&1 >/dev/null |
        sed -n 's/.*generation [0-9]* tokens, \([0-9.]*\) tok\/s.*/\1/p'
    done | median
    "$bin" down --config "$tmp/every-$1.yaml" >/dev/null
  }
  on=() off=() ratios=()
  for r in $(seq "$rounds"); do
    if [ $((r % 2)) = 1 ]; then a=$(rate "$every"); b=$(rate 0); else b=$(rate 0); a=$(rate "$every"); fi
    on+=("$a") off+=("$b")
    ratios+=("$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.4f", a / b}')")
  done
  m=$(printf '%s\n' "${ratios[@]}" | median)
  echo "config $config, $n tokens, $rounds rounds, $(nproc) cores"
  echo "profile on (every $every steps): median $(printf '%s\n' "${on[@]}" | median) tok/s  [${on[*]}]"
  echo "profile off:                     median $(printf '%s\n' "${off[@]}" | median) tok/s  [${off[*]}]"
  awk -v m="$m" -v r="${ratios[*]}" 'BEGIN {
    printf "on/off: median of per-round ratios %.4f (overhead %.2f%%)  [%s]\n", m, 100 * (1 - m), r }'
  # The worst case on one running system, free of restart noise: every step
  # of a generation traced vs none (sampling every EVERY steps costs about
  # 1/EVERY of this).
  "$bin" up --config "$tmp/every-0.yaml" >/dev/null
  echo "every step traced vs none (unicorn profile --overhead $rounds):"
  "$bin" profile --server "$server" --overhead "$rounds" -n "$n" -p "$prompt" | tail -3
  "$bin" down --config "$tmp/every-0.yaml" >/dev/null
  exit 0
fi

"$bin" up --config "$config" >/dev/null
trap '"$bin" down --config "$config" >/dev/null' EXIT
# The config's values (block or flow YAML), else the defaults (value above).
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
