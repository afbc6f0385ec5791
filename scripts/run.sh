#!/usr/bin/env bash
# Runs Plumbline on this host with its single-host default: agent → in-process
# channel → aggregator → SQLite → query service on 127.0.0.1:50051. No Kafka,
# no ClickHouse. Needs root (the eBPF programs load into this kernel).
# Arguments go to `plumbline run` (e.g. `--config plumbline.toml`).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "[run] Plumbline loads eBPF programs into the kernel: run as root (sudo $0)" >&2
  exit 1
fi
scripts/install-deps.sh build
cargo build --release --locked --bin plumbline --bin plumb
echo "[run] starting; ask it with: target/release/plumb ps" >&2
exec target/release/plumbline run "$@"
