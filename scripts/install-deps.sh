#!/usr/bin/env bash
# Installs the Debian (bookworm) packages Plumbline needs. Idempotent: does
# nothing when everything is present. Needs root for apt-get.
#
#   scripts/install-deps.sh build   what building needs (the eBPF toolchain)
#   scripts/install-deps.sh test    that, plus the services the tests run against
#   scripts/install-deps.sh bench   build, plus what `plumbline-bench overhead` and `tls` run (bpftrace, make, cc, libssl-dev, curl)
set -euo pipefail

build_packages=(
  clang-19        # compiles the eBPF programs (clang 14 output fails the verifier)
  libclang1-19    # bindgen loads it in the test that keeps the Rust ABI mirror fresh (node-agent-ebpf)
  libbpf-dev      # bpf_helpers.h, bpf_core_read.h, bpf_tracing.h
  linux-libc-dev  # the linux/ headers libbpf-dev's headers include
)
test_packages=(
  clickhouse-server clickhouse-client
  curl
  golang-go       # builds the Go TLS client the LLM capture tests run (plumbline/tests/clients/go)
  g++             # builds the C++ program the GPU capture tests run (plumbline/tests/gpu)
  make            # the corpus agents' `make test` (plumbline/tests/agents/suite/Makefile)
  chromium chromium-driver  # the headless browser the dashboard tests drive (plumbline/tests/support/browser.rs)
)
bench_packages=(
  bpftrace        # the peer the overhead benchmark compares against
  make gcc        # its C build workload
  libssl-dev      # the SSL_write loop of `plumbline-bench tls`
  curl            # the HTTPS client loop of `plumbline-bench tls`
)

case "${1:-test}" in
  build) packages=("${build_packages[@]}") ;;
  test) packages=("${build_packages[@]}" "${test_packages[@]}") ;;
  bench) packages=("${build_packages[@]}" "${bench_packages[@]}") ;;
  *) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The Node.js TLS clients of the LLM capture tests: any `node` on PATH will do; Debian's when there is none.
if [ "${1:-test}" = test ] && ! command -v node >/dev/null 2>&1; then
  missing+=(nodejs)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

echo "[install-deps] installing: ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "[install-deps] installing packages needs root: sudo $0 ${1:-test}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# clickhouse-server's maintainer scripts try to start the service; without
# systemd as PID 1 that fails harmlessly (we start it ourselves).
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
