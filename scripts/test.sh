#!/usr/bin/env bash
# Plumbline's test command. On a fresh Debian machine, as root:
#   - installs what is missing (clang-19, libbpf headers, ClickHouse, the
#     tansu Kafka-protocol broker, the chdb wheel for the modern-ClickHouse check),
#   - starts the broker and ClickHouse on 127.0.0.1 (state under target/services),
#   - runs every test of the workspace, eBPF ones included (they attach to
#     this kernel, hence root), all of them even after a failure, and ends
#     with one line: passed/failed per test binary,
#   - stops the services, also when a test fails.
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh -p plumbline-store`).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "[test] the eBPF tests load programs into the kernel: run as root (sudo $0)" >&2
  exit 1
fi

scripts/services.sh install
scripts/python-deps.sh
scripts/guest.sh install
trap 'scripts/services.sh stop' EXIT
scripts/services.sh start
eval "$(scripts/services.sh env)"
eval "$(scripts/python-deps.sh env)"

# Every test binary runs even after a failure, so one run shows every failure.
log=target/test-output.log
mkdir -p target
set +e
# Arguments choose what runs (`-p plumbline-store`); none means the whole workspace.
[ $# -gt 0 ] || set -- --workspace
cargo test --locked --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
echo "[test] $(scripts/test-summary.sh "$log")"
exit "$status"
