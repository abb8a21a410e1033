#!/usr/bin/env bash
# Dataset benchmark: latency of listing a large dataset's items through the public API, as the SDKs
# do it (`GET /api/public/dataset-items?datasetName=...&page=N&limit=50`), on a release `serve`
# started on fresh databases (a private stack: scripts/bench-stack.sh).
#
# It seeds one dataset with --items items through `POST /api/public/dataset-items` (a question with
# context and a reference answer each, about 1 KB, with metadata), re-writes a tenth of them (so the
# table holds several versions of some items), then times, one request at a time:
#
#   first-page     page 1
#   random-pages   pages drawn at random over the whole dataset
#   deepest-page   the last page (the largest OFFSET)
#   versioned      random pages of the dataset as it was half way through seeding (`version=`)
#
# Each phase reports p50/p95/p99/max in milliseconds as the client saw them. The report is printed
# and saved in its run directory under .dev/bench/.
#
#     ./scripts/bench-datasets.sh                          # 10,000 items, 300 requests per phase
#     ./scripts/bench-datasets.sh --items 2000 --requests 100
set -euo pipefail

items=10000
requests=300
while (($#)); do
    case $1 in
    --items) items=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    *) echo "usage: $0 [--items N] [--requests N]" >&2; exit 2 ;;
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

[[ -n "${LANGFUSE_RS_BIN:-}" ]] || cargo build --release --bin langfuse-rs

bench_stack_up datasets
trap bench_stack_down EXIT
bench_start serve

python3 - "$api_url" "$items" "$requests" <<'PY' | tee "$run_dir/report.json"
import base64, http.client, json, os, random, sys, time
from datetime import datetime, timezone
from urllib.parse import quote, urlparse

url, items, requests = urlparse(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
auth = "Basic " + base64.b64encode(b"pk-lf-bench:sk-lf-bench").decode()
connection = http.client.HTTPConnection(url.hostname, url.port)
random.seed(7)

def call(method, path, body=None):
    headers = {"Authorization": auth}
    if body is not None:
        body = json.dumps(body)
        headers["Content-Type"] = "application/json"
    started = time.perf_counter()
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    data = response.read()
    elapsed = (time.perf_counter() - started) * 1000
    if response.status != 200:
        raise SystemExit(f"{method} {path}: {response.status} {data[:300]!r}")
    return json.loads(data), elapsed

name = "bench/qa-regression"
call("POST", "/api/public/v2/datasets", {
    "name": name,
    "description": "Questions over support documents with reference answers",
    "inputSchema": {"type": "object", "required": ["question", "context"]},
})

topics = ["billing", "shipping", "returns", "accounts", "security", "integrations", "pricing"]
def item(n, revision):
    topic = topics[n % len(topics)]
    return {
        "datasetName": name,
        "id": f"item-{n:06d}",
        "input": {
            "question": f"How do I change the {topic} settings for workspace {n}?",
            "context": [f"Section {k} of the {topic} guide: " + "settings are managed per workspace; " * 6
                        for k in range(2)],
            "locale": "en-US",
        },
        "expectedOutput": {
            "answer": f"Open Settings, then {topic.title()}, and edit workspace {n} (revision {revision}). "
                      + "Changes apply immediately to every member. " * 3,
            "citations": [f"{topic}-guide#section-{n % 5}"],
        },
        "metadata": {"topic": topic, "difficulty": ["easy", "medium", "hard"][n % 3], "revision": revision},
    }

seed_started = time.perf_counter()
version = None
seed_ms = []
for n in range(items):
    if n == items // 2:
        time.sleep(0.01)
        version = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        time.sleep(0.01)
    seed_ms.append(call("POST", "/api/public/dataset-items", item(n, 1))[1])
for n in range(0, items, 10):
    seed_ms.append(call("POST", "/api/public/dataset-items", item(n, 2))[1])
seed_seconds = time.perf_counter() - seed_started

def percentiles(samples):
    ordered = sorted(samples)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)
    return {"requests": len(ordered), "p50_ms": pick(0.50), "p95_ms": pick(0.95),
            "p99_ms": pick(0.99), "max_ms": round(ordered[-1], 2)}

base = f"/api/public/dataset-items?datasetName={quote(name, safe='')}&limit=50"
pages = -(-items // 50)

def phase(page_of, extra=""):
    samples = []
    for _ in range(10):  # warm-up, not counted
        call("GET", f"{base}&page={page_of()}{extra}")
    for _ in range(requests):
        page = page_of()
        body, elapsed = call("GET", f"{base}&page={page}{extra}")
        if len(body["data"]) == 0:
            raise SystemExit(f"page {page} is empty: {body['meta']}")
        samples.append(elapsed)
    return percentiles(samples)

first, _ = call("GET", f"{base}&page=1")
assert first["meta"]["totalItems"] == items, first["meta"]
page_bytes = len(json.dumps(first))
then, _ = call("GET", f"{base}&page=1&version={quote(version)}")
report = {
    "machine": {"cpus": os.cpu_count(), "load_average_at_end": None},
    "dataset": {"items": items, "versions_rewritten": len(range(0, items, 10)), "page_size": 50,
                "pages": pages, "bytes_per_page": page_bytes,
                "items_at_version": then["meta"]["totalItems"]},
    "seeding": {"seconds": round(seed_seconds, 1), **percentiles(seed_ms)},
    "phases": {
        "first-page": phase(lambda: 1),
        "random-pages": phase(lambda: random.randint(1, pages)),
        "deepest-page": phase(lambda: pages),
        "versioned": phase(lambda: random.randint(1, -(-then["meta"]["totalItems"] // 50)),
                           f"&version={quote(version)}"),
    },
}
report["machine"]["load_average_at_end"] = os.getloadavg()
print(json.dumps(report, indent=2))
PY
