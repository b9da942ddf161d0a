#!/usr/bin/env bash
# Builds the NPU worker's GEMM kernels (gemm.py) for one Gemma 3 model size
# and one NPU generation, and writes a config that uses them.
#
#   npu_worker/kernels/build.sh [--model 1b|4b|12b|27b] [--dev npu1|npu2]
#                               [--dtype bf16|int8] [--rows 256] [--out DIR]
#
# Needs the mlir-aie toolchain (see npu_worker/README.md): its Python package
# `aie` (IRON), aiecc.py, and Peano (llvm-aie) for the core kernels, with
# MLIR_AIE_DIR pointing at the mlir-aie install (for aie_kernels/ sources) and
# PEANO_INSTALL_DIR at Peano. Where they are missing it says which and exits 2.
#
# Output (default build/npu_kernels/<model>-<dev>-<dtype>/, never committed):
#   <name>.xclbin, <name>.insts.bin per shape, and unicorn-npu.yaml: the
#   default split plan with these kernels under workers.npu.kernels.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
model=1b dev=npu1 dtype=bf16 rows=256 out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --dev) dev="$2"; shift 2 ;;
    --dtype) dtype="$2"; shift 2 ;;
    --rows) rows="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
out="${out:-$root/build/npu_kernels/$model-$dev-$dtype}"

missing=()
python3 -c 'import aie.iron' 2>/dev/null || missing+=("the mlir-aie Python package (import aie.iron)")
command -v aiecc.py >/dev/null 2>&1 || missing+=("aiecc.py on PATH")
[ -n "${MLIR_AIE_DIR:-}" ] && [ -d "${MLIR_AIE_DIR}/aie_kernels" ] ||
  missing+=("MLIR_AIE_DIR (an mlir-aie install or checkout with aie_kernels/)")
[ -n "${PEANO_INSTALL_DIR:-}" ] && [ -x "${PEANO_INSTALL_DIR}/bin/clang++" ] ||
  missing+=("PEANO_INSTALL_DIR (Peano / llvm-aie with bin/clang++)")
if [ ${#missing[@]} -gt 0 ]; then
  echo "build.sh: the mlir-aie toolchain is not installed here; missing:" >&2
  for m in "${missing[@]}"; do echo "  - $m" >&2; done
  echo "See npu_worker/README.md (section 'Building the NPU kernels')." >&2
  exit 2
fi

case "$dev" in
  npu1) aie_arch=aie2 peano_target=aie2-none-unknown-elf ;;
  npu2) aie_arch=aie2p peano_target=aie2p-none-unknown-elf ;;
  *) echo "build.sh: --dev must be npu1 or npu2" >&2; exit 2 ;;
esac
case "$dtype" in
  bf16) kflags="-Dbf16_f32_ONLY" ;;
  int8) kflags="-Di8_i32_ONLY" ;;
  *) echo "build.sh: --dtype must be bf16 or int8" >&2; exit 2 ;;
esac

mkdir -p "$out"
echo "mlir-aie: $(python3 -c 'import aie, importlib.metadata as m; print(m.version("mlir_aie"))' 2>/dev/null || echo unknown)" \
  > "$out/TOOLCHAIN"
echo "peano: $("$PEANO_INSTALL_DIR/bin/clang++" --version | head -1)" >> "$out/TOOLCHAIN"

m=64 k=64
kernels_yaml=""
while read -r name K N; do
  cols=$([ "$dev" = npu1 ] && echo 4 || echo 8)
  n=""
  for c in 64 32 16; do
    if [ $((N % cols)) -eq 0 ] && [ $(((N / cols) % c)) -eq 0 ]; then n=$c; break; fi
  done
  [ -n "$n" ] || { echo "build.sh: $name N=$N does not split over $cols columns" >&2; exit 1; }
  tag="${name}_${rows}x${K}x${N}_${dtype}"
  work="$out/$tag.prj"
  mkdir -p "$work"
  echo "== $tag (tile ${m}x${k}x${n}, $cols columns)"
  # Core kernel object: mlir-aie's vectorized mm.cc for this tile size.
  (cd "$work" && "$PEANO_INSTALL_DIR/bin/clang++" -O2 -std=c++20 --target="$peano_target" \
     -DNDEBUG -I "$MLIR_AIE_DIR/aie_runtime_lib/${aie_arch^^}" $kflags \
     -DDIM_M=$m -DDIM_K=$k -DDIM_N=$n -c "$MLIR_AIE_DIR/aie_kernels/$aie_arch/mm.cc" \
     -o "mm_${m}x${k}x${n}.o")
  python3 "$here/gemm.py" --dev "$dev" --dtype "$dtype" -M "$rows" -K "$K" -N "$N" \
    --cols "$cols" -m $m -k $k -n "$n" > "$work/design.mlir"
  (cd "$work" && aiecc.py --no-aiesim --no-xchesscc --no-xbridge --aie-generate-xclbin \
     --xclbin-name="$out/$tag.xclbin" --aie-generate-npu-insts --npu-insts-name="$out/$tag.insts.bin" \
     --peano "$PEANO_INSTALL_DIR" design.mlir)
  kernels_yaml+="      - {name: $tag, xclbin: $out/$tag.xclbin, insts: $out/$tag.insts.bin, dtype: $dtype, m: $rows, k: $K, n: $N}"$'\n'
done < <(python3 "$here/shapes.py" "$model")

cat > "$out/unicorn-npu.yaml" <<YAML
# Written by npu_worker/kernels/build.sh ($model, $dev, $dtype): the default
# split plan with the NPU worker's GEMMs on these kernels.
model: $root/models/demo   # set to a Gemma 3 $model model: the kernels fit its shapes only
workers:
  npu:
    kind: npu
    backend: xrt
    allow_cpu_fallback: false
    kernels:
$kernels_yaml  gpu:
    kind: gpu
    backend: vulkan
plan:
  embedding: gpu
  lm_head: gpu
  vision: gpu
  layers:
    - layers: all
      attention: npu
      ffn: gpu
YAML
echo "build.sh: kernels and $out/unicorn-npu.yaml written (unverified until run on an NPU:"
echo "  ctest --test-dir build -L npu with UNICORN_NPU_CONFIG=$out/unicorn-npu.yaml)"
