#!/usr/bin/env bash
# Prompt benchmark: latency of GET /api/public/v2/prompts/{name} at a fixed rate, on a release
# `serve` started on fresh databases, in four phases:
#
#   cached-idle      the prompt cache on, nothing else running
#   cached-loaded    the same, while the ingestion load generator (examples/ingest_load.rs, as fast
#                    as it goes) saturates the same `serve` process
#   uncached-idle    a `serve` with the cache off (prompts.cache_enabled=false): every read goes to
#                    PostgreSQL and is resolved and serialized anew
#   uncached-loaded  the same, under ingestion load
#
# Each phase reports server-side latency (the Server-Timing header) and client-observed latency,
# p50/p99/p99.9/max, answers by status and by cache tier. The combined report is printed and saved
# in its run directory under .dev/bench/ (a private stack: scripts/bench-stack.sh).
#
#     ./scripts/bench-prompts.sh                       # 1,000 req/s, 10 s per phase
#     ./scripts/bench-prompts.sh --rate 2000 --seconds 20
#
# No `work` process runs: the queue just grows while ingestion is measured, which keeps the worker's
# CPU use out of the figures (in production `serve` and `work` run on different machines).
set -euo pipefail

rate=1000
seconds=10
while (($#)); do
    case $1 in
    --rate) rate=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) echo "usage: $0 [--rate N] [--seconds N]" >&2; exit 2 ;;
    esac
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

cargo build --release --bin langfuse-rs --example ingest_load --example prompt_load

bench_stack_up prompts
# With no worker the backlog only grows: lift its bound, or later phases would meet 429s (cheap
# answers) instead of the ingestion work they are meant to compete with.
export LANGFUSE_RS__INGESTION__MAX_BACKLOG=1000000000
url=$api_url
keys=(--public-key pk-lf-bench --secret-key sk-lf-bench)

serve_pid=""
ingest_pid=""
cleanup() {
    [[ -n "$ingest_pid" ]] && kill "$ingest_pid" 2>/dev/null || true
    bench_stack_down
}
trap cleanup EXIT

start_serve() {
    LANGFUSE_CACHE_PROMPT_ENABLED=$1 bench_start serve
    serve_pid=$started_pid
}

stop_serve() {
    bench_stop "$serve_pid"
    serve_pid=""
}

# A chat prompt of about 1 KB, as applications typically fetch, labelled production.
create_prompt() {
    local filler
    filler=$(printf 'Answer precisely and cite the source document. %.0s' {1..12})
    curl -sf -u pk-lf-bench:sk-lf-bench -H 'content-type: application/json' "$url/api/public/v2/prompts" \
        --data-binary "{\"name\": \"bench/assistant\", \"type\": \"chat\", \"labels\": [\"production\"],
            \"config\": {\"model\": \"gpt-4o\", \"temperature\": 0.2},
            \"prompt\": [{\"role\": \"system\", \"content\": \"You are {{persona}}. $filler\"},
                         {\"type\": \"placeholder\", \"name\": \"history\"},
                         {\"role\": \"user\", \"content\": \"{{question}}\"}]}" >/dev/null
}

# The load generator's optional flags, passed when this version of it has them: no worker runs, so
# there is nothing to wait for after the load (--drain-seconds 0).
ingest_args=(--url "$url" "${keys[@]}")
ingest_help=$(target/release/examples/ingest_load --help 2>/dev/null || true)
for flag in "--drain-seconds 0" "--clickhouse-database bench" "--project-id bench"; do
    if grep -q -- "${flag%% *}" <<<"$ingest_help"; then
        read -ra words <<<"$flag"
        ingest_args+=("${words[@]}")
    fi
done

phase() {
    local name=$1 loaded=$2 report
    if ((loaded)); then
        target/release/examples/ingest_load "${ingest_args[@]}" --seconds $((seconds + 6)) \
            >"$run_dir/ingest-$name.json" 2>>"$run_dir/ingest.log" &
        ingest_pid=$!
        sleep 2 # let ingestion reach full speed first
    fi
    report=$(target/release/examples/prompt_load --url "$url" "${keys[@]}" --name bench/assistant \
        --rate "$rate" --seconds "$seconds" --phase "$name")
    if ((loaded)); then
        wait "$ingest_pid" || true
        ingest_pid=""
        report=$(python3 -c '
import json, sys
report = json.loads(sys.argv[1])
try:
    ingest = json.load(open(sys.argv[2]))
    report["ingestion"] = {k: ingest.get(k) for k in ("accepted_events_per_second", "request_latency_ms", "responses")}
except Exception as error:
    report["ingestion"] = {"error": str(error)}
print(json.dumps(report))
' "$report" "$run_dir/ingest-$name.json")
    fi
    printf '%s\n' "$report"
}

reports=()
start_serve true
create_prompt
reports+=("$(phase cached-idle 0)")
reports+=("$(phase cached-loaded 1)")
stop_serve
start_serve false
reports+=("$(phase uncached-idle 0)")
reports+=("$(phase uncached-loaded 1)")
stop_serve

printf '%s\n' "${reports[@]}" | python3 -c '
import json, os, sys
phases = [json.loads(line) for line in sys.stdin if line.strip()]
print(json.dumps({"machine": {"cpus": os.cpu_count(), "load_average_at_end": os.getloadavg()}, "phases": phases}, indent=2))
' | tee "$run_dir/report.json"
