#!/usr/bin/env bash
# Ingestion benchmark: starts `serve` and `work` (release build, separate processes) on fresh
# databases and a ClickHouse stand-in of its own, runs the load generator (examples/ingest_load.rs),
# and prints its report plus the CPU time and peak memory of each process. The report is also saved
# under .dev/bench/.
#
#     ./scripts/bench-ingestion.sh                          # 20 s at full speed, 16 connections
#     ./scripts/bench-ingestion.sh --seconds 30 --rate 5000 # a fixed offered load
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

ensure_packages
ensure_postgres
ensure_redis
ensure_python_venv

cargo build --release --bin langfuse-rs --example ingest_load

bench_dir="$LF_DEV_DIR/bench"
mkdir -p "$bench_dir"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
run_dir="$bench_dir/run-$stamp"
mkdir -p "$run_dir"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
api_port=$(free_port)
probe_port=$(free_port)
clickhouse_port=$(free_port)

db="lfrs_bench_$(date +%s)_$$"
psql postgres://postgres@127.0.0.1:5432/postgres -qc "CREATE DATABASE $db"

pids=()
cleanup() {
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    psql postgres://postgres@127.0.0.1:5432/postgres -qc "DROP DATABASE IF EXISTS $db" || true
    rm -rf "$run_dir/blob" "$run_dir/clickhouse"
}
trap cleanup EXIT

"$LF_VENV/bin/python" "$LF_CHDB_SERVER" --host 127.0.0.1 --port "$clickhouse_port" \
    --data-dir "$run_dir/clickhouse" >"$run_dir/clickhouse.log" 2>&1 &
clickhouse_pid=$!
pids+=("$clickhouse_pid")
wait_for "clickhouse" 60 "$run_dir/clickhouse.log" curl -sf "http://127.0.0.1:$clickhouse_port/ping"

export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
export CLICKHOUSE_URL="http://127.0.0.1:$clickhouse_port" CLICKHOUSE_DB=bench
export REDIS_CONNECTION_STRING=redis://127.0.0.1:6379 REDIS_KEY_PREFIX="bench-$stamp-$$:"
export SALT=bench-salt LANGFUSE_RS__BLOB__LOCAL_DIR="$run_dir/blob" LANGFUSE_LOG_LEVEL=warn
export LANGFUSE_INIT_ORG_ID=bench-org LANGFUSE_INIT_PROJECT_ID=bench
export LANGFUSE_INIT_PROJECT_PUBLIC_KEY=pk-lf-bench LANGFUSE_INIT_PROJECT_SECRET_KEY=sk-lf-bench
export HOSTNAME=127.0.0.1 PORT=$api_port
export LANGFUSE_RS__WORKER__HEALTH_HOSTNAME=127.0.0.1 LANGFUSE_RS__WORKER__HEALTH_PORT=$probe_port

bin=target/release/langfuse-rs
$bin migrate >/dev/null
$bin serve >"$run_dir/serve.log" 2>&1 &
serve_pid=$!
pids+=("$serve_pid")
$bin work >"$run_dir/work.log" 2>&1 &
work_pid=$!
pids+=("$work_pid")
wait_for "serve" 60 "$run_dir/serve.log" curl -sf "http://127.0.0.1:$api_port/api/public/health"
wait_for "work" 60 "$run_dir/work.log" curl -sf "http://127.0.0.1:$probe_port/api/public/health"

# CPU seconds (user + system) a process has used, from /proc.
cpu_seconds() { awk -v tck="$(getconf CLK_TCK)" '{print ($14 + $15) / tck}' "/proc/$1/stat"; }
peak_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

report=$(target/release/examples/ingest_load --url "http://127.0.0.1:$api_port" \
    --public-key pk-lf-bench --secret-key sk-lf-bench \
    --clickhouse-url "http://127.0.0.1:$clickhouse_port" --clickhouse-database bench \
    --project-id bench "$@")

printf '%s\n' "$report" | python3 -c '
import json, sys
report = json.load(sys.stdin)
names = ["serve", "work", "clickhouse"]
values = sys.argv[1:]
report["peak_memory_mib"] = {n: round(int(values[i]) / 1024, 1) for i, n in enumerate(names[:2])}
report["cpu_seconds"] = {n: round(float(values[2 + i]), 1) for i, n in enumerate(names)}
report["machine"] = {"cpus": __import__("os").cpu_count()}
print(json.dumps(report, indent=2))
' "$(peak_kib "$serve_pid")" "$(peak_kib "$work_pid")" \
    "$(cpu_seconds "$serve_pid")" "$(cpu_seconds "$work_pid")" "$(cpu_seconds "$clickhouse_pid")" |
    tee "$bench_dir/ingestion-$stamp.json"
