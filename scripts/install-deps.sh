#!/usr/bin/env bash
# Installs the system packages Plumbline builds and tests with (Debian bookworm).
# Idempotent: does nothing when everything is present. Needs root for apt-get.
set -euo pipefail

packages=(
  clang-19        # compiles the eBPF programs (clang 14 output fails the verifier)
  libbpf-dev      # bpf_helpers.h, bpf_core_read.h, bpf_tracing.h
  linux-libc-dev  # linux/types.h for the ABI layout check
  clickhouse-server clickhouse-client
  curl
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[install-deps] installing: ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "[install-deps] need root to install packages (sudo $0)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
