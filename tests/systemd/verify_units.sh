#!/usr/bin/env bash
# Checks the systemd units with systemd-analyze verify, pointing ExecStart at
# the freshly built binaries (the installed paths need not exist here).
set -euo pipefail
src=$1 bin=$(cd "$2" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for f in "$src"/configs/systemd/*; do
  sed "s#/usr/local/bin/#$bin/#g" "$f" >"$tmp/$(basename "$f")"
done
# Each worker must restart on its own, and be notify-type with a watchdog.
for u in unicorn-coordinator unicorn-npu-worker unicorn-gpu-worker; do
  for want in Type=notify Restart=on-failure WatchdogSec= RuntimeDirectoryMode=0700; do
    grep -q "^$want" "$tmp/$u.service" || { echo "$u.service lacks $want"; exit 1; }
  done
done
out=$(cd "$tmp" && systemd-analyze verify --man=no ./*.service ./*.target 2>&1 || true)
if [ -n "$out" ]; then
  echo "$out"
  exit 1
fi
echo "systemd units verified"
