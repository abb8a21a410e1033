#!/usr/bin/env bash
# OpenTelemetry ingestion benchmark: starts `serve` and `work` (release build, separate processes)
# on fresh databases and a ClickHouse stand-in of its own, runs the load generator
# (examples/otel_load.rs: gzip protobuf OTLP exports of about 100 spans of whole LLM-application
# traces, with the Langfuse SDK's attributes or OpenInference's and ~1 KB of natural-language
# input and ~1 KB of output per span; `--payload synthetic` for the one-letter payload of earlier
# runs, `--describe` to see the payload), and prints its report (with the bytes per span sent)
# plus the CPU time and peak memory of each process. The report is also saved in its run
# directory under .dev/bench/.
#
#     ./scripts/bench-otel.sh                               # 20 s at full speed, 16 connections
#     ./scripts/bench-otel.sh --seconds 30 --rate 5000 --json  # a fixed offered load, OTLP/JSON
#     ./scripts/bench-otel.sh --serve-only --seconds 15        # what `serve` alone accepts
#
# --serve-only starts no worker, so `serve` has the machine to itself (as in production, where the
# roles run on different machines) and only acceptance is measured; the queue just grows.
# Arguments go to the load generator (see `cargo run --release --example otel_load -- --help`).
# Every port is picked free and the stand-in is private to the run (scripts/bench-stack.sh).
set -euo pipefail

serve_only=0
load_args=()
for arg in "$@"; do
    if [[ $arg == --serve-only ]]; then serve_only=1; else load_args+=("$arg"); fi
done

# shellcheck source=scripts/services.sh
source "$(dirname "${BASH_SOURCE[0]}")/services.sh"
cd "$LF_REPO_ROOT"
# shellcheck source=scripts/bench-stack.sh
source scripts/bench-stack.sh

ensure_packages
ensure_postgres
ensure_redis
ensure_python_venv

cargo build --release --bin langfuse-rs --example otel_load

bench_stack_up otel
if ((serve_only)); then
    # Nothing drains the queue: lift the backlog bound, or the run would measure 429s.
    export LANGFUSE_RS__INGESTION__MAX_BACKLOG=1000000000
    load_args+=(--drain-seconds 0)
fi
bench_start serve
serve_pid=$started_pid
work_pid=""
if ! ((serve_only)); then
    bench_start work
    work_pid=$started_pid
fi

bench_run_load target/release/examples/otel_load --url "$api_url" \
    --public-key pk-lf-bench --secret-key sk-lf-bench \
    --clickhouse-url "$clickhouse_url" --clickhouse-database bench --project-id bench ${load_args[@]+"${load_args[@]}"}

printf '%s\n' "$load_report" | python3 -c '
import json, os, sys
report = json.load(sys.stdin)
names = ["serve", "work", "clickhouse"]
values = sys.argv[1:]
report["peak_memory_mib"] = {n: round(int(values[i]) / 1024, 1) for i, n in enumerate(names[:2]) if values[i]}
report["cpu_seconds"] = {n: round(float(values[2 + i]), 1) for i, n in enumerate(names) if values[2 + i]}
report["cpu_seconds"]["load_generator"] = round(float(values[5]), 1)
report["machine"] = {"cpus": os.cpu_count()}
print(json.dumps(report, indent=2))
' "$(peak_kib "$serve_pid")" "$([[ -n $work_pid ]] && peak_kib "$work_pid")" \
    "$(cpu_seconds "$serve_pid")" "$([[ -n $work_pid ]] && cpu_seconds "$work_pid")" "$(cpu_seconds "$clickhouse_pid")" "$load_cpu_seconds" |
    tee "$run_dir/report.json"
