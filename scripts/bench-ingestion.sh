#!/usr/bin/env bash
# Ingestion benchmark: starts `serve` and `work` (release build, separate processes) on fresh
# databases and a ClickHouse stand-in of its own, runs the load generator (examples/ingest_load.rs:
# batches of about 100 events as the Python SDK 2.x sends them for LLM-application traces, with
# ~1 KB of natural-language input or output per event; `--payload synthetic` for the one-letter
# payload of earlier runs, `--describe` to see the payload), and prints its report (with the bytes
# per event sent, and the traces, observations and scores landed against those accepted) plus the
# CPU time and peak memory of each process. The report is also saved in its run directory under
# .dev/bench/.
#
#     ./scripts/bench-ingestion.sh                          # 20 s at full speed, 16 connections
#     ./scripts/bench-ingestion.sh --seconds 30 --rate 5000 # a fixed offered load
#     ./scripts/bench-ingestion.sh --without-usage          # generations the worker tokenizes
#
# Arguments go to the load generator (see `cargo run --release --example ingest_load -- --help`).
# Worker and ingestion settings can be changed through the environment as usual, for example
# LANGFUSE_RS__WORKER__FLUSH_ROWS=5000.
#
# Every port is picked free and the stand-in is private to the run, so a benchmark neither
# disturbs nor is disturbed by tests or another benchmark using the shared services.
set -euo pipefail

# shellcheck source=scripts/services.sh
source "$(dirname "${BASH_SOURCE[0]}")/services.sh"
cd "$LF_REPO_ROOT"
# shellcheck source=scripts/bench-stack.sh
source scripts/bench-stack.sh

ensure_packages
ensure_postgres
ensure_redis
ensure_python_venv

cargo build --release --bin langfuse-rs --example ingest_load

bench_stack_up ingestion
bench_start serve
serve_pid=$started_pid
bench_start work
work_pid=$started_pid

bench_run_load target/release/examples/ingest_load --url "$api_url" \
    --public-key pk-lf-bench --secret-key sk-lf-bench \
    --clickhouse-url "$clickhouse_url" --clickhouse-database bench \
    --project-id bench "$@"

printf '%s\n' "$load_report" | python3 -c '
import json, sys
report = json.load(sys.stdin)
names = ["serve", "work", "clickhouse"]
values = sys.argv[1:]
report["peak_memory_mib"] = {n: round(int(values[i]) / 1024, 1) for i, n in enumerate(names[:2])}
report["cpu_seconds"] = {n: round(float(values[2 + i]), 1) for i, n in enumerate(names)}
report["cpu_seconds"]["load_generator"] = round(float(values[5]), 1)
report["machine"] = {"cpus": __import__("os").cpu_count()}
print(json.dumps(report, indent=2))
' "$(peak_kib "$serve_pid")" "$(peak_kib "$work_pid")" \
    "$(cpu_seconds "$serve_pid")" "$(cpu_seconds "$work_pid")" "$(cpu_seconds "$clickhouse_pid")" "$load_cpu_seconds" |
    tee "$run_dir/report.json"
