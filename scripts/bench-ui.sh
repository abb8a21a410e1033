#!/usr/bin/env bash
# UI benchmark: the web UI's pages on a large project, and what browsing does to the API.
#
# On a private stack (scripts/bench-stack.sh) with a release `serve`, it seeds one project with
# --traces traces (default 1,000,000) of 5 observations each over 30 days, a score on every third
# trace and two agent runs of 1,000 and 10,000 observations (scripts/bench-ui-seed.sql, generated
# inside ClickHouse) and a custom dashboard of four widgets, then measures, with
# examples/ui_load.rs signed in as a person:
#
#   one-person   each page in turn, one request at a time: server time (Server-Timing) p50/p95/p99
#   team         the same with four people browsing at once
#   prompts      GET /api/public/v2/prompts/{name} at --prompt-rate req/s, alone and while four
#                people browse the traces table (examples/prompt_load.rs)
#   ingestion    the batch API at full speed, alone and while four people browse (examples/ingest_load.rs)
#
# and the peak resident memory of `serve` over the whole run. The report is printed and saved in
# the run directory under .dev/bench/.
#
#     ./scripts/bench-ui.sh                        # 1,000,000 traces, 50 requests per page
#     ./scripts/bench-ui.sh --traces 100000 --requests 20
set -euo pipefail

traces=1000000
requests=50
prompt_rate=500
seconds=10
while (($#)); do
    case $1 in
    --traces) traces=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --prompt-rate) prompt_rate=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) echo "usage: $0 [--traces N] [--requests N] [--prompt-rate N] [--seconds N]" >&2; exit 2 ;;
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

cargo build --release --bin langfuse-rs --example ui_load --example prompt_load --example ingest_load

email=bench@example.com
password=bench-password-for-the-ui
export LANGFUSE_INIT_USER_EMAIL=$email LANGFUSE_INIT_USER_PASSWORD=$password LANGFUSE_INIT_USER_NAME=Bench
bench_stack_up ui
export LANGFUSE_RS__INGESTION__MAX_BACKLOG=1000000000 # no worker runs: the queue only grows
url=$api_url
keys=(--public-key pk-lf-bench --secret-key sk-lf-bench)
browse_pid=""
cleanup() {
    [[ -n "$browse_pid" ]] && kill "$browse_pid" 2>/dev/null || true
    bench_stack_down
}
trap cleanup EXIT

end=$(date -u '+%Y-%m-%d %H:%M:%S')
echo "seeding $traces traces ($((traces * 5)) observations) ending at $end" >&2
seed_started=$SECONDS
"$LF_VENV/bin/python" - "$clickhouse_url" bench scripts/bench-ui-seed.sql "$traces" "$end" <<'EOF'
import sys, time, urllib.request
url, database, path, traces, end = sys.argv[1:]
text = open(path).read()
for name, value in {"project": "bench", "traces": traces, "per_trace": "5", "end": end}.items():
    text = text.replace("{" + name + "}", value)
body = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
for statement in (s.strip() for s in body.split(";\n")):
    if not statement:
        continue
    started = time.time()
    request = urllib.request.Request(f"{url}/?database={database}", data=statement.encode())
    urllib.request.urlopen(request, timeout=3600).read()
    print(f"  {time.time() - started:6.1f} s  {' '.join(statement.split()[:3])}", file=sys.stderr)
EOF
seed_seconds=$((SECONDS - seed_started))

bench_start serve
serve_pid=$started_pid

# A custom dashboard of four widgets, as the widget editor stores them (cost by model, traces
# over time, p95 latency by trace name, the distribution of a score).
psql "$DATABASE_URL" -q <<'SQL'
INSERT INTO dashboards (id, project_id, name) VALUES ('bench-dashboard', 'bench', 'Bench');
INSERT INTO dashboard_widgets (id, dashboard_id, project_id, name, chart_type, query, position, width, height) VALUES
 ('w1', 'bench-dashboard', 'bench', 'Cost by model', 'bar',
  '{"view":"observations","dimensions":[{"field":"providedModelName"}],"metrics":[{"measure":"totalCost","aggregation":"sum"}],"filters":[],"timeDimension":null,"orderBy":null}', 0, 6, 1),
 ('w2', 'bench-dashboard', 'bench', 'Traces', 'line',
  '{"view":"traces","dimensions":[],"metrics":[{"measure":"count","aggregation":"count"}],"filters":[],"timeDimension":{"granularity":"auto"},"orderBy":null}', 1, 6, 1),
 ('w3', 'bench-dashboard', 'bench', 'p95 latency by trace name', 'pivot',
  '{"view":"traces","dimensions":[{"field":"name"}],"metrics":[{"measure":"latency","aggregation":"p95"}],"filters":[],"timeDimension":null,"orderBy":null}', 2, 6, 1),
 ('w4', 'bench-dashboard', 'bench', 'Score values', 'histogram',
  '{"view":"scores-numeric","dimensions":[],"metrics":[{"measure":"value","aggregation":"histogram"}],"filters":[],"timeDimension":null,"orderBy":null}', 3, 6, 1);
SQL

# The prompt the applications read while people browse.
curl -sf -u pk-lf-bench:sk-lf-bench -H 'content-type: application/json' "$url/api/public/v2/prompts" \
    --data-binary '{"name": "bench/assistant", "type": "text", "labels": ["production"],
        "prompt": "You are {{persona}}. Answer precisely and cite the source document."}' >/dev/null

pages=(
    --page "home-dashboard-24h=/project/bench"
    --page "home-dashboard-7d=/project/bench?range=7d"
    --page "custom-dashboard-24h=/project/bench/dashboards/bench-dashboard"
    --page "traces=/project/bench/traces"
    --page "traces-by-user-and-tag=/project/bench/traces?userId=user-{n}&tags=vip"
    --page "traces-30-days-by-user=/project/bench/traces?range=30d&userId=user-{n}"
    --page "traces-by-latency-24h=/project/bench/traces?orderBy=latency.desc"
    --page "trace-of-1000-observations=/project/bench/traces/bench-large-1000"
    --page "trace-of-10000-observations=/project/bench/traces/bench-large-10000"
    --page "sessions=/project/bench/sessions"
    --page "users=/project/bench/users"
    --page "scores=/project/bench/scores"
    --page "prompts=/project/bench/prompts"
)
ui_load() { target/release/examples/ui_load --url "$url" --email "$email" --password "$password" "$@"; }

echo "one person browsing" >&2
ui_load --concurrency 1 --requests "$requests" "${pages[@]}" >"$run_dir/one-person.json" 2>>"$run_dir/ui-load.log"
echo "four people browsing" >&2
ui_load --concurrency 4 --requests "$requests" "${pages[@]}" >"$run_dir/team.json" 2>>"$run_dir/ui-load.log"

# Four people paging through traces for as long as the measured load runs.
start_browsing() {
    ui_load --concurrency 4 --requests 1000000 --warmup 0 \
        --page "traces=/project/bench/traces?userId=user-{n}" >/dev/null 2>>"$run_dir/ui-load.log" &
    browse_pid=$!
    sleep 2
}
stop_browsing() {
    kill "$browse_pid" 2>/dev/null || true
    wait "$browse_pid" 2>/dev/null || true
    browse_pid=""
}
prompts() {
    target/release/examples/prompt_load --url "$url" "${keys[@]}" --name bench/assistant \
        --rate "$prompt_rate" --seconds "$seconds" --phase "$1"
}
ingestion() {
    target/release/examples/ingest_load --url "$url" "${keys[@]}" --seconds "$seconds" --drain-seconds 0 \
        2>>"$run_dir/ingest.log"
}

echo "prompts and ingestion, alone and while people browse" >&2
prompts alone >"$run_dir/prompts-alone.json"
start_browsing
prompts while-browsing >"$run_dir/prompts-while-browsing.json"
stop_browsing
ingestion >"$run_dir/ingestion-alone.json"
start_browsing
ingestion >"$run_dir/ingestion-while-browsing.json"
stop_browsing

serve_peak_kib=$(peak_kib "$serve_pid")

"$LF_VENV/bin/python" - "$run_dir" <<EOF
import json, os, sys
run_dir = sys.argv[1]
def load(name):
    return json.load(open(os.path.join(run_dir, name + ".json")))
def ingest(report):
    return {k: report.get(k) for k in ("accepted_events_per_second", "request_latency_ms", "responses")}
report = {
    "machine": {"cpus": os.cpu_count(), "load_average_at_end": os.getloadavg()},
    "seed": {"traces": $traces, "observations": $traces * 5 + 11000, "seconds": $seed_seconds},
    "serve_peak_rss_mib": round($serve_peak_kib / 1024, 1),
    "one_person": load("one-person"),
    "team_of_four": load("team"),
    "prompts": {"alone": load("prompts-alone"), "while_browsing": load("prompts-while-browsing")},
    "ingestion": {"alone": ingest(load("ingestion-alone")), "while_browsing": ingest(load("ingestion-while-browsing"))},
}
json.dump(report, open(os.path.join(run_dir, "report.json"), "w"), indent=2)
print("page                              people  server p50   p95    p99  (ms)  KiB  statuses")
for people, phase in ((1, report["one_person"]), (4, report["team_of_four"])):
    for name, page in phase["pages"].items():
        s = page["server_ms"]
        print(f"{name:34} {people:5}  {s['p50']:9} {s['p95']:6} {s['p99']:6}  {page['kib']['p50']:9}  {page['statuses']}")
for phase, p in report["prompts"].items():
    print(f"prompts {phase:15} server p50 {p['server_ms']['p50']} p99 {p['server_ms']['p99']} ms, {p['answered_per_second']}/s")
for phase, i in report["ingestion"].items():
    print(f"ingestion {phase:13} {i['accepted_events_per_second']} events/s accepted")
print(f"serve peak RSS {report['serve_peak_rss_mib']} MiB")
EOF
echo "report: $run_dir/report.json" >&2
