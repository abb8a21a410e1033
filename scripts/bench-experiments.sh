#!/usr/bin/env bash
# Experiment benchmark: starts `serve` and `work` (release build, separate processes) on fresh
# databases and a ClickHouse stand-in of its own, then has the Python SDK 5.x
# (tests/sdk/python_v5_experiments.py) create a dataset of N items and run one experiment over
# it (`dataset.run_experiment`, a task that records a generation, an evaluator that scores it,
# the SDK's default concurrency), and measures how long after the SDK returned (it returns once
# it has flushed its spans and scores) the worker has linked every item to its trace as a run
# item of the run (PostgreSQL's `dataset_run_items`), and that the runs API lists all of them.
# Prints a JSON report, also saved in its run directory under .dev/bench/.
#
#     ./scripts/bench-experiments.sh                 # 1,000 items
#     ./scripts/bench-experiments.sh --items 200
#
# LANGFUSE_RS_BIN runs another build (see scripts/bench-stack.sh); LANGFUSE_TEST_PYTHON_SDK_V5 a
# Python with the SDK installed (else its pinned venv is made under .dev/).
set -euo pipefail

items=1000
while (($#)); do
    case $1 in
    --items) items=$2; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
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
python=${LANGFUSE_TEST_PYTHON_SDK_V5:-}
if [[ -z $python ]]; then
    python=$(_lf_requirements_venv "$LF_DEV_DIR/sdk-python-v5" tests/sdk/requirements-python-v5.txt)
fi

if [[ -z ${LANGFUSE_RS_BIN:-} ]]; then
    cargo build --release --bin langfuse-rs
fi

bench_stack_up experiments
bench_start serve
serve_pid=$started_pid
bench_start work
work_pid=$started_pid

run_name="bench-run-$items"
PK=pk-lf-bench SK=sk-lf-bench HOST="$api_url" DATASET="bench-dataset" RUNS="$run_name" ITEMS="$items" \
    "$python" tests/sdk/python_v5_experiments.py >"$run_dir/sdk-report.json" 2>"$run_dir/sdk.log"
returned_at=$(date +%s.%N)

# The run items the worker has linked, as PostgreSQL has them, polled every 100 ms.
linked() {
    psql "$DATABASE_URL" -tAc "SELECT count(*) FROM dataset_run_items i
        JOIN dataset_runs r ON r.id = i.dataset_run_id WHERE r.name = '$run_name'"
}
deadline=$(($(date +%s) + 600))
count=0
while true; do
    count=$(linked)
    ((count >= items)) && break
    if (($(date +%s) > deadline)); then
        echo "only $count of $items run items linked after 600 s; see $run_dir" >&2
        exit 1
    fi
    sleep 0.1
done
linked_at=$(date +%s.%N)

# The runs API lists the run with every item.
listed=$(curl -sf -u pk-lf-bench:sk-lf-bench "$api_url/api/public/datasets/bench-dataset/runs/$run_name" |
    python3 -c 'import json, sys; print(len(json.load(sys.stdin)["datasetRunItems"]))')

python3 - "$run_dir/sdk-report.json" "$returned_at" "$linked_at" "$items" "$count" "$listed" \
    "$(peak_kib "$serve_pid")" "$(peak_kib "$work_pid")" \
    "$(cpu_seconds "$serve_pid")" "$(cpu_seconds "$work_pid")" "$(cpu_seconds "$clickhouse_pid")" <<'EOF' |
import json, os, sys
sdk = json.load(open(sys.argv[1]))
returned_at, linked_at = float(sys.argv[2]), float(sys.argv[3])
run = sdk["runs"][0]
report = {
    "items": int(sys.argv[4]),
    "run_items_linked": int(sys.argv[5]),
    "run_items_listed_by_runs_api": int(sys.argv[6]),
    "sdk_run_experiment_seconds": round(run["seconds"], 2),
    "linked_after_sdk_returned_seconds": round(max(0.0, linked_at - returned_at), 2),
    "linked_after_run_started_seconds": round(linked_at - run["started_at"], 2),
    "peak_memory_mib": {"serve": round(int(sys.argv[7]) / 1024, 1), "work": round(int(sys.argv[8]) / 1024, 1)},
    "cpu_seconds": {"serve": float(sys.argv[9]), "work": float(sys.argv[10]), "clickhouse": float(sys.argv[11])},
    "machine": {"cpus": os.cpu_count()},
}
print(json.dumps(report, indent=2))
EOF
    tee "$run_dir/report.json"
