#!/usr/bin/env bash
# CPU cost per span of each step of the OTLP write path (examples/ingest_cpu.rs), on the load
# generator's realistic exports: no services, nothing else of the stack on the machine, figures
# that hold on a busy machine. Arguments go to the load generator's export writer (e.g.
# `--payload synthetic`, `--io-bytes 4000`, `--pool-traces 1024`).
#
#     ./scripts/bench-cpu.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --release --example otel_load --example ingest_cpu
exports=$(mktemp -d)
trap 'rm -rf "$exports"' EXIT
target/release/examples/otel_load --write-exports "$exports" "$@"
target/release/examples/ingest_cpu "$exports"
