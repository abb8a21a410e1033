#!/usr/bin/env bash
# Metrics API benchmark: dashboard-style queries over a large project, through the HTTP API.
#
# On a private stack (scripts/bench-stack.sh) with a release `serve`, it seeds one project with
# --traces traces (default 1,000,000) of 5 observations each over 30 days, a score on every third
# trace (scripts/bench-ui-seed.sql, generated inside ClickHouse: models, usage and costs included),
# then asks each query below --requests times (after two warm-up requests), one at a time, and
# reports the client-side latency p50/p95/p99 and the rows answered:
#
#   cost-by-model-by-day       observations: sum of totalCost by providedModelName, daily, 30 days
#   latency-p95-by-trace-name  traces: p95 of latency by name, 30 days
#   latency-histogram          observations: histogram of latency (20 bins) of generations, 30 days
#   v2-cost-by-model           the same as the first, without the time buckets, through v2
#
# The target is p95 < 1 s for each. The report is printed and saved as report.json in the run
# directory under .dev/bench/.
#
# Pages of the web UI can be timed in the same run: each --page NAME=PATH is fetched signed in
# (examples/ui_load.rs, as scripts/bench-ui.sh does) and its server time reported beside the
# queries (the project home dashboard should render in under 2 s):
#
#     ./scripts/bench-metrics.sh                                 # 1,000,000 traces, 20 requests each
#     ./scripts/bench-metrics.sh --traces 100000 --requests 10
#     ./scripts/bench-metrics.sh --page home=/project/bench
#
# LANGFUSE_RS_BIN=target/debug/langfuse-rs runs another build instead of building the release one
# (the queries' time is ClickHouse's; the server only relays the rows).
set -euo pipefail

traces=1000000
requests=20
pages=()
while (($#)); do
    case $1 in
    --traces) traces=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --page) pages+=(--page "$2"); shift 2 ;;
    *) echo "usage: $0 [--traces N] [--requests N] [--page NAME=PATH]..." >&2; exit 2 ;;
    esac
done

# shellcheck source=scripts/services.sh
source "$(dirname "${BASH_SOURCE[0]}")/services.sh"
cd "$LF_REPO_ROOT"

ensure_postgres
ensure_redis
# LF_BENCH_VENV names a ready Python environment with the ClickHouse stand-in's requirements
# (another checkout's .dev/venv, say); without it this checkout's own is made or reused.
if [[ -n ${LF_BENCH_VENV:-} ]]; then
    LF_VENV=$LF_BENCH_VENV
else
    ensure_python_venv
fi

if [[ -z ${LANGFUSE_RS_BIN:-} ]]; then
    cargo build --release --bin langfuse-rs
fi
if ((${#pages[@]})); then
    cargo build --release --example ui_load
fi
# shellcheck source=scripts/bench-stack.sh
source scripts/bench-stack.sh

email=bench@example.com
password=bench-password-for-the-ui
export LANGFUSE_INIT_USER_EMAIL=$email LANGFUSE_INIT_USER_PASSWORD=$password LANGFUSE_INIT_USER_NAME=Bench
bench_stack_up metrics
trap bench_stack_down EXIT

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

if ((${#pages[@]})); then
    echo "pages" >&2
    target/release/examples/ui_load --url "$api_url" --email "$email" --password "$password" \
        --concurrency 1 --requests "$requests" "${pages[@]}" >"$run_dir/pages.json" 2>>"$run_dir/ui-load.log"
else
    echo '{"pages": {}}' >"$run_dir/pages.json"
fi

echo "queries" >&2
"$LF_VENV/bin/python" - "$api_url" "$end" "$requests" "$run_dir" "$traces" "$seed_seconds" "$(peak_kib "$serve_pid")" <<'EOF'
import base64, datetime, json, os, statistics, sys, time, urllib.parse, urllib.request

url, end, requests, run_dir, traces, seed_seconds, _ = sys.argv[1:]
requests = int(requests)
to = datetime.datetime.strptime(end, "%Y-%m-%d %H:%M:%S").replace(tzinfo=datetime.timezone.utc)
since = to - datetime.timedelta(days=30)
window = {"fromTimestamp": since.isoformat().replace("+00:00", "Z"),
          "toTimestamp": to.isoformat().replace("+00:00", "Z")}
auth = "Basic " + base64.b64encode(b"pk-lf-bench:sk-lf-bench").decode()

# Each query: a name, the endpoint, the query. Add one here to measure it too.
queries = [
    ("cost-by-model-by-day", "/api/public/metrics", {
        "view": "observations", "dimensions": [{"field": "providedModelName"}],
        "metrics": [{"measure": "totalCost", "aggregation": "sum"}],
        "timeDimension": {"granularity": "day"}, **window}),
    ("latency-p95-by-trace-name", "/api/public/metrics", {
        "view": "traces", "dimensions": [{"field": "name"}],
        "metrics": [{"measure": "latency", "aggregation": "p95"}], **window}),
    ("latency-histogram", "/api/public/metrics", {
        "view": "observations",
        "metrics": [{"measure": "latency", "aggregation": "histogram"}],
        "filters": [{"column": "type", "operator": "=", "value": "GENERATION", "type": "string"}],
        "config": {"bins": 20}, **window}),
    ("v2-cost-by-model", "/api/public/v2/metrics", {
        "view": "observations", "dimensions": [{"field": "providedModelName"}],
        "metrics": [{"measure": "totalCost", "aggregation": "sum"}], **window}),
]

def ask(path, query):
    target = f"{url}{path}?query={urllib.parse.quote(json.dumps(query))}"
    request = urllib.request.Request(target, headers={"Authorization": auth})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as response:
        body = json.loads(response.read())
        status = response.status
    return (time.perf_counter() - started) * 1000, status, body

def percentile(values, p):
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))], 1)

results = {}
for name, path, query in queries:
    for _ in range(2):
        ask(path, query)
    times, statuses, rows = [], {}, 0
    for _ in range(requests):
        ms, status, body = ask(path, query)
        times.append(ms)
        statuses[status] = statuses.get(status, 0) + 1
        rows = len(body["data"])
    results[name] = {"path": path, "query": query, "requests": requests, "rows": rows,
                     "statuses": statuses,
                     "latency_ms": {"p50": percentile(times, 50), "p95": percentile(times, 95),
                                    "p99": percentile(times, 99), "max": round(max(times), 1),
                                    "mean": round(statistics.mean(times), 1)},
                     "p95_under_1s": percentile(times, 95) < 1000}

pages = json.load(open(os.path.join(run_dir, "pages.json"))).get("pages", {})
report = {
    "machine": {"cpus": os.cpu_count(), "load_average_at_end": os.getloadavg()},
    "seed": {"traces": int(traces), "observations": int(traces) * 5 + 11000,
             "seconds": int(seed_seconds)},
    "queries": results,
    "pages": pages,
}
json.dump(report, open(os.path.join(run_dir, "report.json"), "w"), indent=2)
print("query                          rows   p50     p95     p99   (ms)  statuses")
for name, r in results.items():
    l = r["latency_ms"]
    print(f"{name:30} {r['rows']:5} {l['p50']:7} {l['p95']:7} {l['p99']:7}  {r['statuses']}")
for name, page in pages.items():
    s = page["server_ms"]
    print(f"page {name:25}       {s['p50']:7} {s['p95']:7} {s['p99']:7}  {page['statuses']}")
EOF
echo "report: $run_dir/report.json" >&2
