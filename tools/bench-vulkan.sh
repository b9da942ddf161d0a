#!/bin/bash
# Vulkan backend benchmark against llama.cpp's Vulkan backend, on random-weight
# GGUFs with the exact Gemma 3 4B / 27B shapes (Q4_0 matrices, Q8_0 embedding).
#
#   tools/bench-vulkan.sh pack BUILD_DIR LLAMA_BENCH_DIR OUT_DIR
#       (on the build machine) bundles unicorn, unicorn-make-gguf,
#       unicorn-vk-kernel-bench, the Vulkan test binaries and their shared
#       libraries into OUT_DIR/unicorn.tar.xz, and llama-bench with llama.cpp's
#       prebuilt Vulkan libraries (LLAMA_BENCH_DIR) into OUT_DIR/llama.tar.xz.
#   tools/bench-vulkan.sh run BUNDLE_DIR OUT_DIR [4b|27b|tests|kernels]...
#       (on the GPU machine) unpacks both, makes the GGUFs in /tmp, and runs
#       the named parts (default: tests 4b 27b kernels); OUT_DIR gets
#       logs.tgz with every log and copies of the headline ones. BUNDLE_DIR/gl/*.deb (libvulkan1, libglvnd0,
#       libegl1, libgl1, libglx0, libgles2, libopengl0 from Debian) are
#       unpacked into / first: the NVIDIA Vulkan driver needs libglvnd.
#
# llama-bench: built from the llama.cpp release that `npm pack node-llama-cpp`
# carries (llama/gitRelease.bundle), linked against the libraries of
# `npm pack @node-llama-cpp/linux-x64-vulkan` (same release), e.g.
#   g++ -std=c++17 -O2 -DNDEBUG -o llama-bench tools/llama-bench/{main,llama-bench}.cpp \
#     -Itools/llama-bench -Icommon -Iinclude -Iggml/include -Ivendor -L$LIBS \
#     -l:libllama-common.so -l:libllama.vulkan.v0.5.0.so -l:libggml.vulkan.v0.5.0.so \
#     -l:libggml-base.so -lpthread -Wl,-rpath,'$ORIGIN'
set -u -o pipefail

pack() {
  local build=$1 llama=$2 out=$3 tmp
  tmp=$(mktemp -d)
  mkdir -p "$tmp/bin" "$tmp/lib" "$out"
  for b in bin/unicorn bin/unicorn-make-gguf bin/unicorn-vk-kernel-bench \
           tests/gpu_worker_test tests/gemma3_vulkan_test tests/hf_refs_vulkan_test; do
    strip -o "$tmp/bin/$(basename "$b")" "$build/$b"
  done
  # Shared libraries except the C/C++ runtime (the GPU machine has its own,
  # newer ones).
  for b in "$tmp"/bin/*; do ldd "$b"; done | awk '$3 ~ /^\// {print $3}' | sort -u |
    grep -vE '/(libc|libm|libstdc\+\+|libgcc_s|libpthread|libdl|librt|ld-linux[^/]*)\.so' |
    while read -r l; do cp -L "$l" "$tmp/lib/"; done
  # The test binaries read tests/data under the source path they were built from.
  sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt" > "$tmp/source_dir"
  tar -C "$tmp" -cJf "$out/unicorn.tar.xz" bin lib source_dir
  tar -C "$llama" -hcJf "$out/llama.tar.xz" .
  rm -rf "$tmp"
  ls -la "$out"
}

run() {
  local bundle=$1 final=$2 out=/tmp/unicorn-logs
  shift 2
  local parts=${*:-tests 4b 27b kernels}
  local U=/tmp/unicorn L=/tmp/llama
  mkdir -p "$U" "$L" "$out"
  tar -C "$U" -xJf "$bundle/unicorn.tar.xz"
  tar -C "$L" -xJf "$bundle/llama.tar.xz"
  # The NVIDIA Vulkan driver needs the GL vendor-neutral dispatch libraries
  # (libglvnd), which the GPU image lacks: .debs from BUNDLE_DIR/gl, unpacked
  # into / as the device notes describe.
  if compgen -G "$bundle/gl/*.deb" > /dev/null; then
    for f in "$bundle"/gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  export LD_LIBRARY_PATH="$U/lib"
  local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  [ -f "$icd" ] && export VK_DRIVER_FILES=$icd __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem \
    --format=csv 2>&1 | tee "$out/gpu.txt"
  # The test binaries find tests/data under the source path they were built in.
  local src
  src=$(cat "$U/source_dir")
  if [ -n "$src" ] && [ ! -e "$src" ]; then mkdir -p "$(dirname "$src")" && ln -s "$PWD" "$src"; fi

  for part in $parts; do
    case $part in
      tests)
        for t in gpu_worker_test gemma3_vulkan_test hf_refs_vulkan_test; do
          VK_LOADER_DEBUG=error UNICORN_TEST_VK_DEVICE=NVIDIA timeout 90 "$U/bin/$t" --gtest_brief=1 2>&1 |
            tail -25 | tee "$out/$t.txt"
        done ;;
      kernels)
        timeout 120 "$U/bin/unicorn-vk-kernel-bench" --device NVIDIA 2>&1 | tee "$out/kernels.txt" ;;
      4b|27b)
        local g=/tmp/gemma3-$part.gguf n=128
        [ "$part" = 27b ] && n=64
        [ -f "$g" ] || (time "$U/bin/unicorn-make-gguf" --shape "gemma3-$part" --out "$g") 2>&1 |
          tail -3
        timeout 150 "$U/bin/unicorn" bench -m "$g" --backend vulkan --device NVIDIA -p 512 \
          -n "$n" -r 3 2>&1 | tee "$out/unicorn-$part.txt"
        UNICORN_VK_PROFILE=1 timeout 90 "$U/bin/unicorn" bench -m "$g" --backend vulkan \
          --device NVIDIA -p 512 -n 16 -r 1 2>&1 | tee "$out/profile-$part.txt"
        (cd "$L" && timeout 150 ./llama-bench -m "$g" -ngl 99 -p 512 -n "$n" -r 3 2>&1) |
          tee "$out/llama-$part.txt" ;;
    esac
  done
  # Everything in one archive, the headline files beside it.
  mkdir -p "$final"
  tar -C "$out" -czf "$final/logs.tgz" .
  for f in unicorn-4b llama-4b unicorn-27b llama-27b profile-4b kernels; do
    [ -f "$out/$f.txt" ] && cp "$out/$f.txt" "$final/"
  done
}

case "${1:-}" in
  pack) shift; pack "$@" ;;
  run) shift; run "$@" ;;
  *) sed -n '2,25p' "$0"; exit 2 ;;
esac
