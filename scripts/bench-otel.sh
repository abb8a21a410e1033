#!/usr/bin/env bash
# OpenTelemetry ingestion benchmark: starts `serve` and `work` (release build, separate processes)
# on fresh databases, runs the load generator (examples/otel_load.rs: OTLP exports of 100 spans
# with ~1 KB of input and ~1 KB of output each, gzip protobuf by default), and prints its report
# plus the peak memory of both processes. The report is also saved under .dev/bench/. Its ports,
# database and key prefix differ from bench-ingestion.sh's, so the two can run on one machine.
#
#     ./scripts/bench-otel.sh                               # 20 s at full speed, 16 connections
#     ./scripts/bench-otel.sh --seconds 30 --rate 5000 --json  # a fixed offered load, OTLP/JSON
#
# Arguments go to the load generator (see `cargo run --release --example otel_load -- --help`).
set -euo pipefail

# shellcheck source=scripts/services.sh
source "$(dirname "${BASH_SOURCE[0]}")/services.sh"
cd "$LF_REPO_ROOT"

ensure_packages
ensure_postgres
ensure_redis
ensure_python_venv
ensure_clickhouse

cargo build --release --bin langfuse-rs --example otel_load

bench_dir="$LF_DEV_DIR/bench"
mkdir -p "$bench_dir"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
db=lfrs_bench_otel
psql postgres://postgres@127.0.0.1:5432/postgres -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
curl -sf http://127.0.0.1:8123/ --data-binary "DROP DATABASE IF EXISTS $db" >/dev/null
rm -rf "$bench_dir/otel-blob"

export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
export CLICKHOUSE_URL=http://127.0.0.1:8123 CLICKHOUSE_DB=$db
export REDIS_CONNECTION_STRING=redis://127.0.0.1:6379 REDIS_KEY_PREFIX="bench-otel-$stamp:"
export SALT=bench-salt LANGFUSE_RS__BLOB__LOCAL_DIR="$bench_dir/otel-blob" LANGFUSE_LOG_LEVEL=warn
export LANGFUSE_INIT_ORG_ID=bench-org LANGFUSE_INIT_PROJECT_ID=bench
export LANGFUSE_INIT_PROJECT_PUBLIC_KEY=pk-lf-bench LANGFUSE_INIT_PROJECT_SECRET_KEY=sk-lf-bench
export HOSTNAME=127.0.0.1 PORT=3200 LANGFUSE_RS__WORKER__HEALTH_HOSTNAME=127.0.0.1 LANGFUSE_RS__WORKER__HEALTH_PORT=3230

bin=target/release/langfuse-rs
$bin migrate >/dev/null
$bin serve >"$bench_dir/otel-serve-$stamp.log" 2>&1 &
serve_pid=$!
$bin work >"$bench_dir/otel-work-$stamp.log" 2>&1 &
work_pid=$!
trap 'kill $serve_pid $work_pid 2>/dev/null || true' EXIT
wait_for "serve" 60 "$bench_dir/otel-serve-$stamp.log" curl -sf http://127.0.0.1:3200/api/public/health
wait_for "work" 60 "$bench_dir/otel-work-$stamp.log" curl -sf http://127.0.0.1:3230/api/public/health

report=$(target/release/examples/otel_load --url http://127.0.0.1:3200 \
    --public-key pk-lf-bench --secret-key sk-lf-bench \
    --clickhouse-url http://127.0.0.1:8123 --clickhouse-database $db --project-id bench "$@")

peak_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
serve_peak=$(peak_kib $serve_pid)
work_peak=$(peak_kib $work_pid)
printf '%s\n' "$report" | python3 -c '
import json, sys
report = json.load(sys.stdin)
report["peak_memory_mib"] = {"serve": round(int(sys.argv[1]) / 1024, 1), "work": round(int(sys.argv[2]) / 1024, 1)}
print(json.dumps(report, indent=2))
' "$serve_peak" "$work_peak" | tee "$bench_dir/otel-$stamp.json"
