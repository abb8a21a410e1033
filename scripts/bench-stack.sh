# Shared by the benchmark scripts (sourced, not run): a private stack for one run, so that a
# benchmark neither disturbs nor is disturbed by tests or another benchmark on the shared services.
#
# bench_stack_up NAME creates, under .dev/bench/run-NAME-<stamp>/, a ClickHouse stand-in of its own
# on a free port, a fresh PostgreSQL database, a Redis key prefix of its own and a blob directory,
# and exports the settings `serve`, `work` and `migrate` read. Ports are picked free, so runs can
# overlap. Everything it made is removed on exit, except the logs in the run directory.
#
# After it: $run_dir, $api_port, $probe_port, $clickhouse_port, $clickhouse_url, $api_url,
# bench_start ROLE [ARGS...] starts `langfuse-rs ROLE ARGS` with its log in the run directory and
# sets $started_pid; cpu_seconds PID and peak_kib PID read /proc. LANGFUSE_RS_BIN names another
# build to run (a profiling one, say); the default is the release build. BENCH_CLICKHOUSE_VERBOSE=1
# makes the stand-in log every statement with its engine time to clickhouse.log in the run directory.

bench_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

bench_bin=${LANGFUSE_RS_BIN:-target/release/langfuse-rs}
bench_pids=()
bench_database=""

bench_stack_down() {
    if ((${#bench_pids[@]})); then
        kill "${bench_pids[@]}" 2>/dev/null || true
        wait "${bench_pids[@]}" 2>/dev/null || true
    fi
    if [[ -n "$bench_database" ]]; then
        psql postgres://postgres@127.0.0.1:5432/postgres -qc "DROP DATABASE IF EXISTS $bench_database" || true
    fi
    rm -rf "$run_dir/blob" "$run_dir/clickhouse"
}

bench_stack_up() {
    local name=$1 stamp
    bench_dir="$LF_DEV_DIR/bench"
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    run_dir="$bench_dir/run-$name-$stamp"
    mkdir -p "$run_dir"
    api_port=$(bench_free_port)
    probe_port=$(bench_free_port)
    clickhouse_port=$(bench_free_port)
    clickhouse_url="http://127.0.0.1:$clickhouse_port"
    api_url="http://127.0.0.1:$api_port"

    bench_database="lfrs_bench_$(date +%s)_$$"
    psql postgres://postgres@127.0.0.1:5432/postgres -qc "CREATE DATABASE $bench_database"
    trap bench_stack_down EXIT

    "$LF_VENV/bin/python" "$LF_CHDB_SERVER" --host 127.0.0.1 --port "$clickhouse_port" \
        --data-dir "$run_dir/clickhouse" ${BENCH_CLICKHOUSE_VERBOSE:+--verbose} >"$run_dir/clickhouse.log" 2>&1 &
    clickhouse_pid=$!
    bench_pids+=("$clickhouse_pid")
    wait_for "clickhouse" 60 "$run_dir/clickhouse.log" curl -sf "$clickhouse_url/ping"

    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$bench_database"
    export CLICKHOUSE_URL="$clickhouse_url" CLICKHOUSE_DB=bench
    export REDIS_CONNECTION_STRING=redis://127.0.0.1:6379 REDIS_KEY_PREFIX="bench-$name-$stamp-$$:"
    export SALT=bench-salt LANGFUSE_RS__BLOB__LOCAL_DIR="$run_dir/blob" LANGFUSE_LOG_LEVEL=warn
    export LANGFUSE_INIT_ORG_ID=bench-org LANGFUSE_INIT_PROJECT_ID=bench
    export LANGFUSE_INIT_PROJECT_PUBLIC_KEY=pk-lf-bench LANGFUSE_INIT_PROJECT_SECRET_KEY=sk-lf-bench
    export HOSTNAME=127.0.0.1 PORT=$api_port
    export LANGFUSE_RS__WORKER__HEALTH_HOSTNAME=127.0.0.1 LANGFUSE_RS__WORKER__HEALTH_PORT=$probe_port

    "$bench_bin" migrate >"$run_dir/migrate.log" 2>&1
}

# Starts `langfuse-rs ROLE [ARGS...]` and waits until it answers its health check.
bench_start() {
    local role=$1
    shift
    "$bench_bin" "$role" "$@" >>"$run_dir/$role.log" 2>&1 &
    started_pid=$!
    bench_pids+=("$started_pid")
    local health="$api_url/api/public/health"
    [[ $role == work ]] && health="http://127.0.0.1:$probe_port/api/public/health"
    wait_for "$role" 60 "$run_dir/$role.log" curl -sf "$health"
}

# Stops a process bench_start started.
bench_stop() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# Runs a load generator (its arguments), keeping its JSON report in $load_report and the CPU
# seconds it used in $load_cpu_seconds: it shares the machine with what it measures, so the
# reports say how much of it the generator took.
bench_run_load() {
    local TIMEFORMAT='%U %S'
    { time "$@" >"$run_dir/load-report.json" 2>>"$run_dir/load.log"; } 2>"$run_dir/load-times"
    load_report=$(cat "$run_dir/load-report.json")
    load_cpu_seconds=$(awk '{print $1 + $2}' "$run_dir/load-times")
}

# CPU seconds (user + system) a process has used, and its peak resident memory, from /proc.
cpu_seconds() { awk -v tck="$(getconf CLK_TCK)" '{print ($14 + $15) / tck}' "/proc/$1/stat"; }
peak_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
